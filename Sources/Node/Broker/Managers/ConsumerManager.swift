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
        var clients: [String: Channel] = [:]
        /// topic -> tag codes (nil: every tag).
        var subscriptions: [String: Set<Int32>?] = [:]
        var messageModel = MessageModel.clustering
    }
    private let groups = Mutex<[String: Group]>([:])

    init() {}

    /// Registers a heartbeat's consumer groups for `clientID` on `channel`; returns the groups whose membership
    /// or subscribed topics changed. The newest heartbeat's subscription set replaces the group's (RocketMQ's
    /// `updateSubscription`): a topic no longer subscribed is dropped.
    func register(clientID: String, channel: Channel, consumers: [ConsumerData]) -> [String] {
        groups.withLock { groups in
            var changed: [String] = []
            for consumer in consumers {
                var group = groups[consumer.groupName] ?? Group()
                var subscriptions: [String: Set<Int32>?] = [:]
                for subscription in consumer.subscriptionDataSet { subscriptions[subscription.topic] = subscription.codeSet }
                let isNew = group.clients[clientID] == nil || group.subscriptions.keys.sorted() != subscriptions.keys.sorted()
                group.clients[clientID] = channel
                group.messageModel = consumer.messageModel
                group.subscriptions = subscriptions
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
                let remaining = group.clients.filter { $0.value !== channel }
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

    /// The groups online with a subscription to `topic`.
    func groups(subscribing topic: String) -> [String] {
        groups.withLock { $0.filter { $0.value.subscriptions[topic] != nil }.keys.sorted() }
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED (one-way) to every member of `group`.
    func notifyConsumerIdsChanged(_ group: String) {
        let channels = groups.withLock { $0[group].map { Array($0.clients.values) } ?? [] }
        for channel in channels {
            let command = RemotingCommand(code: RequestCode.notifyConsumerIdsChanged, opaque: 0, flag: RemotingCommand.onewayFlag,
                                          extFields: ["consumerGroup": group])
            channel.writeAndFlush(command, promise: nil)
        }
    }
}
