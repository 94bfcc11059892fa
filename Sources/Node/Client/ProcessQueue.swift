import Common
import Remoting
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The messages of one queue between pull and listener: their offsets decide what may be committed
/// (the smallest still in flight), and their count drives flow control.
final class ProcessQueue: Sendable {
    struct State {
        var offsets: Set<Int64> = []
        var maxOffset: Int64 = -1
        var dropped = false
        var locked = false
        var lastPullTimestamp: Int64 = 0
        var lastConsumeTimestamp: Int64 = 0
        var lastLockTimestamp: Int64 = 0
    }
    private let state = Mutex(State())
    let task = Mutex<Task<Void, Never>?>(nil)

    var count: Int { state.withLock { $0.offsets.count } }
    var isDropped: Bool { state.withLock { $0.dropped } }
    var isLocked: Bool { state.withLock { $0.locked } }
    func setLocked(_ locked: Bool) {
        state.withLock { state in
            state.locked = locked
            if locked { state.lastLockTimestamp = currentTimeMillis() }
        }
    }

    /// What GET_CONSUMER_RUNNING_INFO reports of this queue (`commitOffset` is the consumer's).
    func info(commitOffset: Int64) -> ProcessQueueInfo {
        state.withLock { state in
            var info = ProcessQueueInfo()
            info.commitOffset = commitOffset
            info.cachedMsgMinOffset = state.offsets.min() ?? 0
            info.cachedMsgMaxOffset = state.offsets.max() ?? 0
            info.cachedMsgCount = state.offsets.count
            info.locked = state.locked
            info.lastLockTimestamp = state.lastLockTimestamp
            info.droped = state.dropped
            info.lastPullTimestamp = state.lastPullTimestamp
            info.lastConsumeTimestamp = state.lastConsumeTimestamp
            return info
        }
    }

    func put(_ messages: [MessageExt]) {
        state.withLock { state in
            state.lastPullTimestamp = currentTimeMillis()
            for message in messages {
                state.offsets.insert(message.queueOffset)
                state.maxOffset = max(state.maxOffset, message.queueOffset)
            }
        }
    }

    /// Removes consumed messages; returns the offset now safe to commit.
    func remove(_ messages: [MessageExt]) -> Int64? {
        state.withLock { state in
            for message in messages { state.offsets.remove(message.queueOffset) }
            state.lastConsumeTimestamp = currentTimeMillis()
            guard state.maxOffset >= 0 else { return nil }
            return state.offsets.min() ?? state.maxOffset + 1
        }
    }

    func drop() {
        state.withLock { $0.dropped = true }
        task.withLock { $0?.cancel() }
    }

    func stopped() async { await task.withLock { $0 }?.value }
}
