#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Common
import IndexFile
import NIOCore
import NIOPosix
import Remoting
import Testing
import TestSupport

/// The broker's config files (reliability issue, item 3): a file that parses but lost its table is corrupt, not
/// empty; the broker falls back to the `.bak` and says so, never lets the corrupt file replace the good backup,
/// and refuses to start (naming the file) when neither copy reads. Topic changes are journaled, so creating
/// topics never rewrites the whole file each time.
@Suite(.serialized) struct ConfigFileTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func createTopic(_ client: RemotingClient, _ broker: RunningBroker, _ topic: String) async throws -> Int32 {
        try await client.invoke(broker.address, RemotingCommand(code: RequestCode.updateAndCreateTopic, opaque: 0, extFields: [
            "topic": topic, "readQueueNums": "2", "writeQueueNums": "2", "perm": "6"])).code
    }

    func topics(_ client: RemotingClient, _ broker: RunningBroker) async throws -> Set<String> {
        let answer = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.getAllTopicConfig, opaque: 0))
        return Set(try TopicConfigSerializeWrapper.decode(from: answer.body).topicConfigTable.keys)
    }

    /// Replaces the first `target` in the file with `replacement` (same length: a flipped byte).
    func corrupt(_ path: String, _ target: String, _ replacement: String) throws {
        let text = try #require(readTextFile(path))
        writeText(path, text.replacingFirst(target, with: replacement))
    }

    @Test func aCorruptTopicsFileFallsBackToItsBackupLoudlyAndNeverReplacesIt() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        #expect(try await createTopic(client, broker, "Kept") == ResponseCode.success)
        #expect(broker.process?.terminate() == 0)
        try broker.start()  // the second clean stop keeps the first file as topics.json.bak
        let stopped = broker.process?.terminate()
        #expect(stopped == 0, "\(broker.process?.drain() ?? [])")
        let path = broker.directory.path + "/store/config/topics.json"
        try corrupt(path, "topicConfigTable", "topicConfigTablf")
        try broker.start()
        #expect(broker.bootLines.contains { $0.contains("topics.json") && $0.contains(".bak instead") }, "\(broker.bootLines)")
        #expect(try await topics(client, broker).contains("Kept"))
        #expect(try await createTopic(client, broker, "Later") == ResponseCode.success)
        #expect(broker.process?.terminate() == 0)
        // The corrupt file was not made the backup: the backup still reads.
        let backup = try #require(readTextFile(path + ".bak"))
        #expect(backup.contains("\"topicConfigTable\""))
        try broker.start()
        #expect(try await topics(client, broker).isSuperset(of: ["Kept", "Later"]))
        #expect(broker.process?.terminate() == 0)
        // Both copies corrupt: the broker refuses to start and names the file.
        try corrupt(path, "topicConfigTable", "topicConfigTablf")
        try corrupt(path + ".bak", "topicConfigTable", "topicConfigTablf")
        #expect(throws: StoreError.self) { try broker.start() }
        #expect(broker.bootLines.contains { $0.contains("topics.json") && $0.contains("fix or remove") }, "\(broker.bootLines)")
        await client.close()
    }

    @Test func topicChangesAreJournaledAndSurviveACrash() async throws {
        let broker = try RunningBroker()
        let client = RemotingClient(group: group)
        for index in 0..<200 { #expect(try await createTopic(client, broker, "J\(index)") == ResponseCode.success) }
        broker.process?.killHard()  // no clean stop: the journal alone holds the newest topics
        try broker.start()
        let found = try await topics(client, broker)
        #expect((0..<200).allSatisfy { found.contains("J\($0)") })
        #expect(broker.process?.terminate() == 0)
        await client.close()
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
