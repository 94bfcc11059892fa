import CommitLog
import Common
import IndexFile
import Synchronization

/// Committed consumer offsets (RocketMQ's `ConsumerOffsetManager`): `topic@group` -> queue -> next offset to
/// consume, in memory, persisted to `config/consumerOffset.json` every 5 s and at shutdown.
///
/// **Thread:** any.
final class ConsumerOffsetManager: Sendable {
    private struct State {
        var wrapper = ConsumerOffsetSerializeWrapper()
        var file: ConfigBodyFile<ConsumerOffsetSerializeWrapper>
        var dirty = false
    }
    private let state: Mutex<State>
    private let log: @Sendable (String) -> Void

    init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        var file = ConfigBodyFile<ConsumerOffsetSerializeWrapper>(storePathRootDir: storePathRootDir, name: "consumerOffset.json", log: log)
        let wrapper = try file.load() ?? ConsumerOffsetSerializeWrapper()
        state = Mutex(State(wrapper: wrapper, file: file))
        self.log = log
    }

    func committed(group: String, topic: String, queueID: Int32) -> Int64? {
        state.withLock { $0.wrapper.offsetTable[ConsumerOffsetSerializeWrapper.key(topic: topic, group: group)]?[queueID] }
    }

    func commit(group: String, topic: String, queueID: Int32, offset: Int64) {
        state.withLock { state in
            state.wrapper.offsetTable[ConsumerOffsetSerializeWrapper.key(topic: topic, group: group), default: [:]][queueID] = offset
            state.dirty = true
        }
    }

    /// The queues `group` committed offsets for (optionally of one topic), sorted.
    func consumedQueues(group: String, topic: String?) -> [(topic: String, queueID: Int32, offset: Int64)] {
        state.withLock { state in
            state.wrapper.offsetTable.keys.sorted().flatMap { key -> [(topic: String, queueID: Int32, offset: Int64)] in
                guard key.hasSuffix("@" + group) else { return [] }
                let name = String(key.dropLast(group.count + 1))
                guard topic == nil || topic == name else { return [] }
                let queues = state.wrapper.offsetTable[key]!
                return queues.keys.sorted().map { (name, $0, queues[$0]!) }
            }
        }
    }

    /// Forgets every offset of `group` (DELETE_SUBSCRIPTIONGROUP with removeOffset).
    func removeOffsets(group: String) {
        state.withLock { state in
            let keys = state.wrapper.offsetTable.keys.filter { $0.hasSuffix("@" + group) }
            for key in keys { state.wrapper.offsetTable.removeValue(forKey: key) }
            if !keys.isEmpty { state.dirty = true }
        }
    }

    /// The topics `group` committed offsets for (RocketMQ's `whichTopicByConsumer`).
    func topics(group: String) -> [String] {
        state.withLock { state in
            state.wrapper.offsetTable.keys.filter { $0.hasSuffix("@" + group) }.map { String($0.dropLast(group.count + 1)) }.sorted()
        }
    }

    /// The groups with an offset committed for `topic` (keys `topic@group`).
    func groups(of topic: String) -> [String] {
        let prefix = topic + "@"
        return state.withLock { $0.wrapper.offsetTable.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    }

    /// Every offset (GET_ALL_CONSUMER_OFFSET, a slave's sync).
    var wrapper: ConsumerOffsetSerializeWrapper { state.withLock { $0.wrapper } }

    /// Takes the master's offsets (a slave's sync), keeping none of its own.
    func replaceAll(with wrapper: ConsumerOffsetSerializeWrapper) {
        state.withLock { state in
            guard state.wrapper != wrapper else { return }
            state.wrapper = wrapper
            state.dirty = true
        }
    }

    /// Writes the file if anything changed since the last write. Runs on a store thread (it fsyncs).
    func persist() {
        state.withLock { state in
            guard state.dirty else { return }
            do {
                try state.file.persist(state.wrapper)
                state.dirty = false
            } catch {
                log("broker: cannot persist consumerOffset.json: \(error)")
            }
        }
    }
}
