import Common
import NIOCore
import Synchronization

/// Producer groups as heartbeats name them (RocketMQ's `ProducerManager`): which clients of a group are
/// connected, for GET_PRODUCER_CONNECTION_LIST and for the transaction check service, which asks a live producer of
/// a group about its half messages. A client leaves its groups when it unregisters or its connection closes.
///
/// **Thread:** any.
final class ProducerManager: Sendable {
    private let groups = Mutex<[String: [String: ClientChannelInfo]]>([:])

    init() {}

    func register(_ client: ClientChannelInfo, groups names: [String]) {
        groups.withLock { groups in
            for name in names { groups[name, default: [:]][client.clientID] = client }
        }
    }

    func unregister(clientID: String, group: String) {
        groups.withLock { groups in
            groups[group]?.removeValue(forKey: clientID)
            if groups[group]?.isEmpty == true { groups.removeValue(forKey: group) }
        }
    }

    func channelClosed(_ channel: Channel) {
        groups.withLock { groups in
            for (name, clients) in groups {
                let remaining = clients.filter { $0.value.channel !== channel }
                guard remaining.count != clients.count else { continue }
                groups[name] = remaining.isEmpty ? nil : remaining
            }
        }
    }

    /// The group's connected clients, by client id.
    func connections(group: String) -> [Connection] {
        groups.withLock { $0[group]?.values.sorted { $0.clientID < $1.clientID }.map(\.connection) ?? [] }
    }

    /// A connected member of `group` (RocketMQ's `getAvailableChannel`), tried in turn from a random one so checks
    /// spread over the group; nil when no member is connected.
    func availableChannel(group: String) -> Channel? {
        let channels = groups.withLock { $0[group].map { $0.values.map(\.channel) } ?? [] }
        guard !channels.isEmpty else { return nil }
        let start = Int.random(in: 0..<channels.count)
        for step in 0..<channels.count where channels[(start + step) % channels.count].isActive {
            return channels[(start + step) % channels.count]
        }
        return nil
    }
}
