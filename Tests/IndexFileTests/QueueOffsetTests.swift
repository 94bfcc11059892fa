import CommitLog
import IndexFile
import Testing
import TestSupport

/// Queue offsets come from the store's own table (an open-addressing table read under the append lock).
@Suite struct QueueOffsetTests {
    /// Enough queues to grow the table several times, with topics of every length class (under, at and over a
    /// word), put to in an interleaved order: each queue counts from 0 on its own.
    @Test func everyQueueCountsOnItsOwnAcrossTableGrowth() throws {
        let dir = TemporaryDirectory()
        let store = try MessageStore(config: storeConfig(dir.path))
        defer { store.close() }
        let topics = ["T", "Topic-8b", "TopicOf9b", "A-longer-topic-name-of-some-length"]
        let queues = topics.flatMap { topic in (0..<80).map { (topic, Int32($0)) } }
        for round in 0..<3 {
            for (topic, queueID) in queues {
                let result = try store.put(Outgoing(topic: topic, queueID: queueID, body: [UInt8(round)], tag: nil, keys: []))
                #expect(result.queueOffset == Int64(round), "\(topic)/\(queueID)")
            }
        }
        store.waitForDispatch()
        for (topic, queueID) in queues { #expect(store.maxOffset(topic: topic, queueID: queueID) == 3, "\(topic)/\(queueID)") }
    }

    /// Reopening a store with more queues than the table's first size sets them all (growing the table while it
    /// sets), and each continues where it stopped.
    @Test func manyQueuesContinueAfterRestart() throws {
        let dir = TemporaryDirectory()
        let queues = ["Short", "A-longer-topic-name"].flatMap { topic in (0..<100).map { (topic, Int32($0)) } }
        do {
            let store = try MessageStore(config: storeConfig(dir.path))
            for round in 0..<2 {
                for (topic, queueID) in queues {
                    _ = try store.put(Outgoing(topic: topic, queueID: queueID, body: [UInt8(round)], tag: nil, keys: []))
                }
            }
            store.waitForDispatch()
            store.close()
        }
        let store = try MessageStore(config: storeConfig(dir.path))
        defer { store.close() }
        for (topic, queueID) in queues {
            #expect(try store.put(Outgoing(topic: topic, queueID: queueID, body: [9], tag: nil, keys: [])).queueOffset == 2,
                    "\(topic)/\(queueID)")
        }
    }

    /// Deleting a topic restarts its queues' offsets at 0 and leaves every other queue's where it was.
    @Test func deletedTopicStartsAgainOthersContinue() throws {
        let dir = TemporaryDirectory()
        let store = try MessageStore(config: storeConfig(dir.path))
        defer { store.close() }
        for queueID in Int32(0)..<4 {
            for _ in 0..<5 {
                _ = try store.put(Outgoing(topic: "Gone", queueID: queueID, body: [1], tag: nil, keys: []))
                _ = try store.put(Outgoing(topic: "Kept", queueID: queueID, body: [2], tag: nil, keys: []))
            }
        }
        store.waitForDispatch()
        store.deleteTopic("Gone")
        for queueID in Int32(0)..<4 {
            #expect(try store.put(Outgoing(topic: "Gone", queueID: queueID, body: [3], tag: nil, keys: [])).queueOffset == 0)
            #expect(try store.put(Outgoing(topic: "Kept", queueID: queueID, body: [4], tag: nil, keys: [])).queueOffset == 5)
        }
    }
}
