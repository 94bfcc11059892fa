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
    private let state = Mutex<(offsets: Set<Int64>, maxOffset: Int64, dropped: Bool, locked: Bool)>(([], -1, false, false))
    let task = Mutex<Task<Void, Never>?>(nil)

    var count: Int { state.withLock { $0.offsets.count } }
    var isDropped: Bool { state.withLock { $0.dropped } }
    var isLocked: Bool { state.withLock { $0.locked } }
    func setLocked(_ locked: Bool) { state.withLock { $0.locked = locked } }

    func put(_ messages: [MessageExt]) {
        state.withLock { state in
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
