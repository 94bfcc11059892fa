import CommitLog
import Common
import IndexFile
import Synchronization

/// The broker's topics (RocketMQ's `TopicConfigManager`): created by admin requests, auto-created from the
/// TBW102 template on first send, or by the broker itself (retry, DLQ and schedule topics); kept in
/// `config/topics.json` with a data version the NameServers compare.
///
/// **Thread:** any (one lock; the file is written under it).
final class TopicConfigManager: Sendable {
    private struct State {
        var wrapper = TopicConfigSerializeWrapper()
        var file: ConfigBodyFile<TopicConfigSerializeWrapper>
    }
    private let state: Mutex<State>
    private let log: @Sendable (String) -> Void

    init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        var file = ConfigBodyFile<TopicConfigSerializeWrapper>(storePathRootDir: storePathRootDir, name: "topics.json", log: log)
        let wrapper = try file.load() ?? TopicConfigSerializeWrapper()
        state = Mutex(State(wrapper: wrapper, file: file))
        self.log = log
    }

    func topic(_ name: String) -> TopicConfig? { state.withLock { $0.wrapper.topicConfigTable[name] } }

    var wrapper: TopicConfigSerializeWrapper { state.withLock { $0.wrapper } }
    var dataVersion: DataVersion { state.withLock { $0.wrapper.dataVersion } }

    /// Adds `config` unless the topic exists; true when it was new (the caller re-registers).
    @discardableResult
    func createIfAbsent(_ config: TopicConfig) -> Bool {
        state.withLock { state in
            guard state.wrapper.topicConfigTable[config.topicName] == nil else { return false }
            state.wrapper.topicConfigTable[config.topicName] = config
            persist(&state)
            return true
        }
    }

    /// Creates or replaces a topic (UPDATE_AND_CREATE_TOPIC).
    func upsert(_ config: TopicConfig) {
        state.withLock { state in
            state.wrapper.topicConfigTable[config.topicName] = config
            persist(&state)
        }
    }

    func delete(_ name: String) {
        state.withLock { state in
            guard state.wrapper.topicConfigTable.removeValue(forKey: name) != nil else { return }
            persist(&state)
        }
    }

    /// Replaces every topic with the master's (a slave's periodic sync); true when anything changed.
    func replaceAll(with wrapper: TopicConfigSerializeWrapper) -> Bool {
        state.withLock { state in
            guard state.wrapper.topicConfigTable != wrapper.topicConfigTable else { return false }
            state.wrapper = wrapper
            persist(&state, bump: false)
            return true
        }
    }

    private func persist(_ state: inout State, bump: Bool = true) {
        if bump { state.wrapper.dataVersion.next() }
        do { try state.file.persist(state.wrapper) } catch { log("broker: cannot persist topics.json: \(error)") }
    }
}
