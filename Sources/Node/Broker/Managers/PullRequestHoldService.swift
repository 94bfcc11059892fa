import CommitLog
import IndexFile
import NIOCore
import Remoting
import Synchronization

/// Long polling (RocketMQ's `PullRequestHoldService`): a PULL that finds nothing new is parked until a message
/// arrives for its queue past its offset, or its suspend time passes; then it is answered again without
/// parking.
///
/// **Thread:** any; wake-ups come from the store's dispatch thread.
final class PullRequestHoldService: Sendable {
    /// A parked pull.
    struct HeldPull {
        var request: RemotingCommand
        var channel: Channel
        var offset: Int64
        var promise: EventLoopPromise<RemotingCommand?>
        var timeout: Scheduled<Void>
    }
    private struct State {
        var held: [String: [UInt64: HeldPull]] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())
    private let store: MessageStore
    /// Answers a held pull again (never parking it); set once by the pull processor before traffic.
    private let rerun = Mutex<(@Sendable (RemotingCommand, Channel) -> RemotingCommand?)?>(nil)

    init(store: MessageStore) {
        self.store = store
    }

    func setRerun(_ body: @escaping @Sendable (RemotingCommand, Channel) -> RemotingCommand?) { rerun.withLock { $0 = body } }

    private static func key(topic: String, queueID: Int32) -> String { "\(topic)@\(queueID)" }

    /// Parks a pull of (topic, queue) at `offset` for at most `millis`; the answer completes `promise`.
    func hold(_ request: RemotingCommand, channel: Channel, topic: String, queueID: Int32, offset: Int64,
              promise: EventLoopPromise<RemotingCommand?>, millis: Int64) {
        let key = Self.key(topic: topic, queueID: queueID)
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(millis)) { [weak self] () -> Void in
                guard let self, let pull = self.take(key: key, id: id) else { return }
                pull.promise.succeed(self.rerun.withLock { $0 }?(pull.request, pull.channel))
            }
            state.held[key, default: [:]][id] = HeldPull(request: request, channel: channel, offset: offset, promise: promise, timeout: timeout)
        }
        // A message may have arrived between the pull's read and the hold.
        if store.maxOffset(topic: topic, queueID: queueID) > offset { wake(topic: topic, queueID: queueID) }
    }

    private func take(key: String, id: UInt64) -> HeldPull? {
        state.withLock { state in
            defer { if state.held[key]?.isEmpty == true { state.held[key] = nil } }
            return state.held[key]?.removeValue(forKey: id)
        }
    }

    /// Answers the pulls of (topic, queue) whose offset is now below the queue's end. Runs on the dispatch thread
    /// for every message: nothing is built when no pull is parked.
    func wake(topic: String, queueID: Int32) {
        guard state.withLock({ !$0.held.isEmpty }) else { return }
        let key = Self.key(topic: topic, queueID: queueID)
        let maxOffset = store.maxOffset(topic: topic, queueID: queueID)
        let ready: [HeldPull] = state.withLock { state in
            guard let pulls = state.held[key] else { return [] }
            let due = pulls.filter { $0.value.offset < maxOffset }
            for id in due.keys { state.held[key]!.removeValue(forKey: id) }
            if state.held[key]!.isEmpty { state.held[key] = nil }
            return Array(due.values)
        }
        guard !ready.isEmpty, let rerun = rerun.withLock({ $0 }) else { return }
        for pull in ready {
            pull.timeout.cancel()
            pull.channel.eventLoop.execute { pull.promise.succeed(rerun(pull.request, pull.channel)) }
        }
    }

    /// Cancels every parked pull's timer (shutdown); their connections close with the server.
    func stop() {
        let all = state.withLock { state -> [HeldPull] in
            defer { state.held = [:] }
            return state.held.values.flatMap(\.values)
        }
        for pull in all {
            pull.timeout.cancel()
            pull.promise.succeed(nil)
        }
    }
}
