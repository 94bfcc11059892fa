@testable import Broker
import Common
import Testing
import TestSupport

/// The send path's shortcuts: a connection's cached topics, which hold only while the topics are unchanged, the
/// names checked once per topic, and the DELAY pre-check, which never misses a DELAY property.
@Suite struct SendPathTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func cachedTopicsHoldForTheirGenerationAndName() {
        let cache = SendTopicCache()
        let names = ["T0", "T1", "a-topic-name-longer-than-fifteen-bytes", "T3", "T4"]
        for (index, name) in names.enumerated() {
            cache.keep(name, SendTopic(config: TopicConfig(topicName: name), putStats: MessageStats()), generation: UInt64(index))
        }
        func hit(_ name: String, _ generation: UInt64) -> String? {
            bytes(name).withUnsafeBytes { cache.entry(named: $0, generation: generation)?.topic.config.topicName }
        }
        #expect(hit("T0", 0) == nil)  // the oldest of five went when the fifth came
        #expect(hit("T1", 1) == "T1" && hit("T4", 4) == "T4")
        #expect(hit(names[2], 2) == names[2])
        #expect(hit("T1", 2) == nil)  // found at another generation: looked up again
        #expect(hit("T", 1) == nil && hit("T10", 1) == nil && hit("", 1) == nil)
    }

    @Test func topicChangesMoveTheSendGeneration() throws {
        let directory = TemporaryDirectory("send-path")
        let topics = try TopicConfigManager(storePathRootDir: directory.path, log: { _ in })
        var seen = topics.sendGeneration
        func moved() -> Bool {
            defer { seen = topics.sendGeneration }
            return topics.sendGeneration != seen
        }
        topics.upsert(TopicConfig(topicName: "Orders"))
        #expect(moved())
        #expect(topics.topicForSend("Orders")?.nameAllowsSend == true)
        #expect(!topics.createIfAbsent(TopicConfig(topicName: "Orders")) && !moved())
        topics.upsert(TopicConfig(topicName: "Orders", readQueueNums: 2, writeQueueNums: 2))
        #expect(moved() && topics.topicForSend("Orders")?.config.writeQueueNums == 2)
        topics.delete("Orders")
        #expect(moved() && topics.topicForSend("Orders") == nil)
        topics.upsert(TopicConfig(topicName: TopicValidator.autoCreateTopicKeyTopic))
        #expect(topics.topicForSend(TopicValidator.autoCreateTopicKeyTopic)?.nameAllowsSend == false)
    }

    @Test(arguments: [
        ("DELAY\u{1}3", true), ("A\u{1}b\u{2}DELAY\u{1}3\u{2}", true), ("DELAY\u{1}", true),
        ("", false), ("DELAY", false), ("XDELAY\u{1}3", false), ("A\u{1}DELAY\u{2}", false), ("DELA\u{1}Y", false),
    ])
    func delayPreCheckAgreesWithTheProperties(_ text: String, _ delayed: Bool) {
        bytes(text).withUnsafeBytes { properties in
            #expect(SendMessageProcessor.mayHaveDelay(properties) == delayed)
            if MessageProperties.value(of: "DELAY", in: properties) != nil { #expect(SendMessageProcessor.mayHaveDelay(properties)) }
        }
    }
}
