import Client
import CommitLog
import Common

/// Where `bench consumer` starts, decided before its push consumer does.
enum ConsumerStart {
    /// Polls the NameServers every 200 ms (at most `seconds`) until `topic` has a route; prints once that it waits.
    /// - Returns: whether the route was missing at first (the topic is newer than this consumer).
    /// - Throws: at once when no NameServer answers; `ValidationErrorText` when the time is up.
    static func waitForRoute(namesrvAddr: String, topic: String, seconds: Double) async throws -> Bool {
        let admin = Admin(namesrvAddr: namesrvAddr)
        defer { Task { await admin.shutdown() } }
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        var waited = false
        while true {
            do {
                _ = try await admin.topicRoute(topic)
                return waited
            } catch let error as ClientError {
                if case .noNameServer = error { throw error }
            }
            guard monotonicNanos() < deadline else {
                throw ValidationErrorText("topic \(topic) has no route after \(Int(seconds)) s (no producer sent to it; --route-wait sets the wait)")
            }
            if !waited { print("bench consumer: waiting up to \(Int(seconds)) s for topic \(topic) to have a route (start the producer)") }
            waited = true
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Commits each queue's end offset for every queue of `topic` where `group` has no committed offset, so a new
    /// group reads only messages sent after it starts. (RocketMQ's CONSUME_FROM_LAST_OFFSET alone would not: its
    /// broker answers a new group with offset 0 while a queue still holds its first message.)
    /// - Returns: how many queues were set.
    static func newGroupAtQueueEnds(namesrvAddr: String, topic: String, group: String) async throws -> Int {
        let admin = Admin(namesrvAddr: namesrvAddr)
        let consumer = PullConsumer(group: group, namesrvAddr: namesrvAddr)
        consumer.start()
        defer { Task { await admin.shutdown(); await consumer.shutdown() } }
        let committed = Set(try await admin.consumeProgress(group: group, topic: topic).map(\.queue))
        var pinned = 0
        for queue in try await consumer.fetchSubscribeMessageQueues(topic) where !committed.contains(queue) {
            try await consumer.updateConsumeOffset(queue, offset: try await consumer.maxOffset(queue))
            pinned += 1
        }
        return pinned
    }
}
