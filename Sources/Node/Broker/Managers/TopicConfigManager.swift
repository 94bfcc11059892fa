import CommitLog
import Common
import IndexFile
import Remoting
import Synchronization

/// The broker's topics (RocketMQ's `TopicConfigManager`): created by admin requests, auto-created from the
/// TBW102 template on first send, or by the broker itself (retry, DLQ and schedule topics); kept in
/// `config/topics.json` (RocketMQ's shape) with a data version the NameServers compare.
///
/// A change is acknowledged once it is on disk, but does not rewrite the whole file: it is one line in
/// `topics.json.journal`, and the file is rewritten (and the journal emptied) once the journal holds as many
/// lines as there are topics. Creating n topics therefore writes O(n) bytes, not O(n²).
///
/// **Thread:** any (one lock; files are written under it).
final class TopicConfigManager: Sendable {
    private struct State {
        var wrapper = TopicConfigSerializeWrapper()
        var file: ConfigBodyFile<TopicConfigSerializeWrapper>
        var journal: ConfigJournal
        /// Each topic's config again, with its put statistics (made with the topic, dropped with it): what a send
        /// reads, in one look-up.
        var forSend: [String: SendTopic] = [:]
        /// Moves on with every change to `forSend` (senders' cached entries hold while it stands still).
        let sendGeneration = SendGeneration()

        /// Brings `forSend` in line with the table for `name` (every topic when nil), keeping the statistics of a
        /// topic that stays.
        mutating func sync(_ name: String? = nil) {
            let names = name.map { [$0] } ?? Array(Set(forSend.keys).union(wrapper.topicConfigTable.keys))
            for name in names {
                guard let config = wrapper.topicConfigTable[name] else {
                    forSend[name] = nil
                    continue
                }
                forSend[name] = SendTopic(config: config, putStats: forSend[name]?.putStats ?? MessageStats())
            }
            sendGeneration.value.add(1, ordering: .releasing)
        }
    }
    private let state: Mutex<State>
    private let log: @Sendable (String) -> Void
    /// Compaction waits for at least this many journal lines, so a small table is not rewritten every time.
    static let journalLinesMin = 64

    init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        var file = ConfigBodyFile<TopicConfigSerializeWrapper>(storePathRootDir: storePathRootDir, name: "topics.json", log: log)
        var wrapper = try file.load() ?? TopicConfigSerializeWrapper()
        var journal = ConfigJournal(path: file.path + ".journal")
        for line in journal.lines() {
            do { try Self.apply(line, to: &wrapper) } catch {
                throw StoreError(.badConfig, "\(journal.path): \(error); fix or remove the file to start")
            }
        }
        var loaded = State(wrapper: wrapper, file: file, journal: journal)
        loaded.sync()
        generation = loaded.sendGeneration
        state = Mutex(loaded)
        self.log = log
    }

    func topic(_ name: String) -> TopicConfig? { state.withLock { $0.wrapper.topicConfigTable[name] } }

    /// The topic's config and its put statistics in one look-up under the lock: the send path's only table access.
    func topicForSend(_ name: String) -> SendTopic? { state.withLock { $0.forSend[name] } }

    /// Moves on whenever a topic's send entry changes: an entry found by `topicForSend` after reading it may be
    /// used again, without the look-up, while it has not moved.
    var sendGeneration: UInt64 { generation.value.load(ordering: .acquiring) }
    private let generation: SendGeneration

    /// A topic's put statistics (nil: no such topic).
    func putStats(_ name: String) -> MessageStats? { state.withLock { $0.forSend[name]?.putStats } }
    var allPutStats: [MessageStats] { state.withLock { $0.forSend.values.map(\.putStats) } }

    var wrapper: TopicConfigSerializeWrapper { state.withLock { $0.wrapper } }
    var dataVersion: DataVersion { state.withLock { $0.wrapper.dataVersion } }
    var count: Int { state.withLock { $0.wrapper.topicConfigTable.count } }

    /// Adds `config` unless the topic exists; true when it was new (the caller re-registers).
    @discardableResult
    func createIfAbsent(_ config: TopicConfig) -> Bool {
        state.withLock { state in
            guard state.wrapper.topicConfigTable[config.topicName] == nil else { return false }
            record(.object([("upsert", config.json)]), &state) { $0.topicConfigTable[config.topicName] = config }
            state.sync(config.topicName)
            return true
        }
    }

    /// Creates or replaces a topic (UPDATE_AND_CREATE_TOPIC).
    func upsert(_ config: TopicConfig) {
        state.withLock { state in
            record(.object([("upsert", config.json)]), &state) { $0.topicConfigTable[config.topicName] = config }
            state.sync(config.topicName)
        }
    }

    func delete(_ name: String) {
        state.withLock { state in
            guard state.wrapper.topicConfigTable[name] != nil else { return }
            record(.object([("delete", .string(name))]), &state) { $0.topicConfigTable[name] = nil }
            state.sync(name)
        }
    }

    /// Moves the data version on with no topic change, in memory (the broker's permission changed: the NameServers
    /// must take the topics again, masked). Not journaled: the next change journals a later version anyway.
    func bumpDataVersion() { state.withLock { $0.wrapper.dataVersion.next() } }

    /// Replaces every topic with the master's (a slave's periodic sync); true when anything changed.
    func replaceAll(with wrapper: TopicConfigSerializeWrapper) -> Bool {
        state.withLock { state in
            guard state.wrapper.topicConfigTable != wrapper.topicConfigTable else { return false }
            state.wrapper = wrapper
            state.sync()
            compact(&state)
            return true
        }
    }

    /// Applies a change in memory, bumps the data version and journals it (compacting when due).
    private func record(_ change: JSONValue, _ state: inout State, _ apply: (inout TopicConfigSerializeWrapper) -> Void) {
        apply(&state.wrapper)
        state.wrapper.dataVersion.next()
        let line = JSONValue.object((change.members ?? []) + [("dataVersion", state.wrapper.dataVersion.json)]).compactText
        do { try state.journal.append(line) } catch { log("broker: cannot journal a topic change: \(error)") }
        if state.journal.count >= max(Self.journalLinesMin, state.wrapper.topicConfigTable.count) { compact(&state) }
    }

    private func compact(_ state: inout State) {
        do {
            try state.file.persist(state.wrapper)
            try state.journal.reset()
        } catch {
            log("broker: cannot persist topics.json: \(error)")
        }
    }

    /// Writes the whole file and empties the journal (shutdown).
    func persist() { state.withLock { compact(&$0) } }

    /// One journal line: `{"upsert":TopicConfig,...}` or `{"delete":"name",...}`, with the data version after it.
    private static func apply(_ line: String, to wrapper: inout TopicConfigSerializeWrapper) throws {
        let change = try JSONValue.parse(line)
        if let config = change["upsert"] {
            let topic = try TopicConfig(json: config)
            wrapper.topicConfigTable[topic.topicName] = topic
        } else if let name = change["delete"]?.string {
            wrapper.topicConfigTable[name] = nil
        } else {
            throw BodyError(type: "topic journal", reason: "a line is neither an upsert nor a delete")
        }
        if let version = change["dataVersion"] { wrapper.dataVersion = try DataVersion(json: version) }
    }
}

/// What a send needs of its topic, made when the topic is (and replaced when it changes): the config, the put
/// statistics, and whether producers may send to the name at all (checked once here, not per message).
final class SendTopic: Sendable {
    let config: TopicConfig
    let putStats: MessageStats
    /// The name is well formed (`TopicValidator.problem`) and not one producers may not send to.
    let nameAllowsSend: Bool

    init(config: TopicConfig, putStats: MessageStats) {
        self.config = config
        self.putStats = putStats
        nameAllowsSend = TopicValidator.problem(with: config.topicName) == nil && !TopicValidator.notAllowedSend.contains(config.topicName)
    }
}

/// `TopicConfigManager.sendGeneration`'s counter.
final class SendGeneration: Sendable {
    let value = Atomic<UInt64>(0)
}
