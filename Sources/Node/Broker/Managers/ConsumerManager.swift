import CommitLog
import Common
import NIOCore
import Remoting
import Synchronization

/// Consumer groups as their heartbeats describe them (RocketMQ's `ConsumerManager`): members with their
/// connections, the message model, and the subscriptions the broker filters pulls with. Membership changes are
/// announced to the group (NOTIFY_CONSUMER_IDS_CHANGED) so clients rebalance at once.
///
/// **Thread:** any.
final class ConsumerManager: Sendable {
    struct Group {
        var clients: [String: ClientChannelInfo] = [:]
        /// topic -> tag codes (nil: every tag).
        var subscriptions: [String: Set<Int32>?] = [:]
        /// topic -> the subscription as the newest heartbeat sent it (what GET_CONSUMER_CONNECTION_LIST shows).
        var subscriptionData: [String: SubscriptionData] = [:]
        var messageModel = MessageModel.clustering
        var consumeType = "CONSUME_PASSIVELY"
        var consumeFromWhere = ""
    }
    private let groups = Mutex<[String: Group]>([:])

    init() {}

    /// Registers a heartbeat's consumer groups for `clientID` on `channel`; returns the groups whose membership
    /// or subscribed topics changed. The newest heartbeat's subscription set replaces the group's (RocketMQ's
    /// `updateSubscription`): a topic no longer subscribed is dropped.
    func register(_ client: ClientChannelInfo, consumers: [ConsumerData]) -> [String] {
        let clientID = client.clientID
        return groups.withLock { groups in
            var changed: [String] = []
            for consumer in consumers {
                var group = groups[consumer.groupName] ?? Group()
                var subscriptions: [String: Set<Int32>?] = [:]
                var data: [String: SubscriptionData] = [:]
                for subscription in consumer.subscriptionDataSet {
                    subscriptions[subscription.topic] = subscription.codeSet
                    data[subscription.topic] = subscription
                }
                let isNew = group.clients[clientID] == nil || group.subscriptions.keys.sorted() != subscriptions.keys.sorted()
                group.clients[clientID] = client
                group.messageModel = consumer.messageModel
                group.consumeType = consumer.consumeType
                group.consumeFromWhere = consumer.consumeFromWhere
                group.subscriptions = subscriptions
                group.subscriptionData = data
                groups[consumer.groupName] = group
                if isNew { changed.append(consumer.groupName) }
            }
            return changed
        }
    }

    /// Removes `clientID` from `group`; true when it was a member.
    func unregister(clientID: String, group: String) -> Bool {
        groups.withLock { $0[group]?.clients.removeValue(forKey: clientID) != nil }
    }

    /// Removes every client on `channel`; returns the groups that lost one.
    func channelClosed(_ channel: Channel) -> [String] {
        groups.withLock { groups in
            var changed: [String] = []
            for (name, group) in groups {
                let remaining = group.clients.filter { $0.value.channel !== channel }
                guard remaining.count != group.clients.count else { continue }
                groups[name]!.clients = remaining
                changed.append(name)
            }
            return changed
        }
    }

    func consumerIDs(group: String) -> [String] { groups.withLock { $0[group]?.clients.keys.sorted() ?? [] } }

    /// The group's registered tag codes for `topic`: `.none` when the group does not subscribe to it, `.some(nil)`
    /// for every tag.
    func subscription(group: String, topic: String) -> Set<Int32>?? { groups.withLock { $0[group]?.subscriptions[topic] } }

    var groupNames: [String] { groups.withLock { $0.keys.sorted() } }

    /// The group's members, what they subscribe and how they consume (nil when no member is connected).
    func connection(group: String) -> ConsumerConnection? {
        groups.withLock { groups in
            guard let group = groups[group], !group.clients.isEmpty else { return nil }
            return ConsumerConnection(connectionSet: group.clients.values.sorted { $0.clientID < $1.clientID }.map(\.connection),
                                      subscriptionTable: group.subscriptionData, consumeType: group.consumeType,
                                      messageModel: group.messageModel.rawValue, consumeFromWhere: group.consumeFromWhere)
        }
    }

    /// The member `clientID` of `group`, when connected.
    func client(_ clientID: String, group: String) -> ClientChannelInfo? { groups.withLock { $0[group]?.clients[clientID] } }

    /// Every member of `group`.
    func clients(group: String) -> [ClientChannelInfo] { groups.withLock { $0[group].map { Array($0.clients.values) } ?? [] } }

    /// The groups online with a subscription to `topic`.
    func groups(subscribing topic: String) -> [String] {
        groups.withLock { $0.filter { $0.value.subscriptions[topic] != nil }.keys.sorted() }
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED (one-way) to every member of `group`.
    func notifyConsumerIdsChanged(_ group: String) {
        let channels = groups.withLock { $0[group].map { $0.clients.values.map(\.channel) } ?? [] }
        for channel in channels {
            let command = RemotingCommand(code: RequestCode.notifyConsumerIdsChanged, opaque: 0, flag: RemotingCommand.onewayFlag,
                                          extFields: ["consumerGroup": group])
            channel.writeAndFlush(command, promise: nil)
        }
    }
}

/// A client's connection as the broker knows it (RocketMQ's `ClientChannelInfo`).
struct ClientChannelInfo: Sendable {
    var clientID: String
    var channel: Channel
    /// `host:port` the client connected from.
    var address: String
    var language: String
    var version: Int32

    var connection: Connection { Connection(clientId: clientID, clientAddr: address, language: language, version: version) }
}
