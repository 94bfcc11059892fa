import Common
import NIOCore
import Synchronization

/// Producer groups as heartbeats name them (RocketMQ's `ProducerManager`): which clients of a group are
/// connected, for GET_PRODUCER_CONNECTION_LIST. A client leaves its groups when it unregisters or its connection
/// closes.
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
                groups[name] = remaining.isEmpty ? nil : remaining
            }
        }
    }

    /// The group's connected clients, by client id.
    func connections(group: String) -> [Connection] {
        groups.withLock { $0[group]?.values.sorted { $0.clientID < $1.clientID }.map(\.connection) ?? [] }
    }
}
