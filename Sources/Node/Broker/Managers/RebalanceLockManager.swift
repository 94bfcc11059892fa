import CommitLog
import Common
import Synchronization

/// Queue locks of orderly consumers (RocketMQ's `RebalanceLockManager`): one client of a group owns a queue
/// until it unlocks it or stops renewing the lock for `lockMaxLiveMillis`.
///
/// **Thread:** any.
final class RebalanceLockManager: Sendable {
    static let lockMaxLiveMillis: Int64 = 60_000
    private struct Owner { var clientID: String; var lastMillis: Int64 }
    private let locks = Mutex<[String: [MessageQueue: Owner]]>([:])

    init() {}

    /// Locks or renews every queue that is free, expired or already the caller's; returns those.
    func tryLock(group: String, clientID: String, queues: [MessageQueue], now: Int64) -> [MessageQueue] {
        locks.withLock { locks in
            var table = locks[group] ?? [:]
            var granted: [MessageQueue] = []
            for queue in queues {
                if let owner = table[queue], owner.clientID != clientID, now - owner.lastMillis < Self.lockMaxLiveMillis { continue }
                table[queue] = Owner(clientID: clientID, lastMillis: now)
                granted.append(queue)
            }
            locks[group] = table
            return granted
        }
    }

    func unlock(group: String, clientID: String, queues: [MessageQueue]) {
        locks.withLock { locks in
            for queue in queues where locks[group]?[queue]?.clientID == clientID { locks[group]![queue] = nil }
        }
    }
}
