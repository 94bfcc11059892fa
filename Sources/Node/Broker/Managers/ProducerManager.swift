import NIOCore
import Synchronization

/// Producer groups as their heartbeats describe them (RocketMQ's `ProducerManager`): each member's connection,
/// so the transaction check service can ask a live producer of a group about its half messages.
///
/// **Thread:** any.
final class ProducerManager: Sendable {
    /// group -> clientID -> the connection its last heartbeat came on.
    private let groups = Mutex<[String: [String: Channel]]>([:])

    init() {}

    func register(clientID: String, channel: Channel, groups names: [String]) {
        guard !names.isEmpty else { return }
        groups.withLock { groups in
            for name in names { groups[name, default: [:]][clientID] = channel }
        }
    }

    func unregister(clientID: String, group: String) {
        groups.withLock { groups in
            groups[group]?.removeValue(forKey: clientID)
            if groups[group]?.isEmpty == true { groups.removeValue(forKey: group) }
        }
    }

    /// Removes every producer on `channel` (its connection closed).
    func channelClosed(_ channel: Channel) {
        groups.withLock { groups in
            for (name, clients) in groups {
                let remaining = clients.filter { $0.value !== channel }
                guard remaining.count != clients.count else { continue }
                groups[name] = remaining.isEmpty ? nil : remaining
            }
        }
    }

    /// A connected member of `group` (RocketMQ's `getAvailableChannel`), tried in turn from a random one so checks
    /// spread over the group; nil when no member is connected.
    func availableChannel(group: String) -> Channel? {
        let channels = groups.withLock { $0[group].map { Array($0.values) } ?? [] }
        guard !channels.isEmpty else { return nil }
        let start = Int.random(in: 0..<channels.count)
        for step in 0..<channels.count where channels[(start + step) % channels.count].isActive {
            return channels[(start + step) % channels.count]
        }
        return nil
    }

    func clientIDs(group: String) -> [String] { groups.withLock { $0[group]?.keys.sorted() ?? [] } }
}
