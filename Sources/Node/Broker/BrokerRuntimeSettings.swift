import Common
import Synchronization

/// The broker settings that change while it runs (UPDATE_BROKER_CONFIG's runtime keys), read on the send and pull
/// paths with one relaxed atomic load.
///
/// **Thread:** any.
final class BrokerRuntimeSettings: Sendable {
    private let permission: Atomic<Int>
    /// Serializes writes of the config file.
    let fileLock = Mutex<Void>(())

    init(_ config: BrokerConfig) { permission = Atomic(config.brokerPermission.rawValue) }

    var brokerPermission: Permission {
        get { Permission(rawValue: permission.load(ordering: .relaxed)) }
        set { permission.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// `topics` with every topic's permission ANDed with the broker's, when the broker's lacks READ or WRITE.
    func masked(_ topics: TopicConfigSerializeWrapper) -> TopicConfigSerializeWrapper {
        let broker = brokerPermission
        guard !broker.isWriteable || !broker.isReadable else { return topics }
        var masked = topics
        for (name, var config) in masked.topicConfigTable {
            config.perm = Permission(rawValue: config.perm.rawValue & broker.rawValue)
            masked.topicConfigTable[name] = config
        }
        return masked
    }
}
