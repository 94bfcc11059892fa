#if canImport(Glibc)
import Glibc
#endif
@testable import Broker
import Client
import Common
import NIOCore
import NIOPosix
import Remoting
import Synchronization
import Testing
import TestSupport

/// What a check listener was asked, shared with the test.
final class CheckLog: Sendable {
    struct Check: Sendable {
        var message: MessageExt
        var receivedMillis: Int64
    }
    private let checks = Mutex<[Check]>([])
    func add(_ message: MessageExt) { checks.withLock { $0.append(Check(message: message, receivedMillis: currentTimeMillis())) } }
    var all: [Check] { checks.withLock { $0 } }
    var count: Int { checks.withLock { $0.count } }
}

/// Transactional messages end to end against real mqnamesrv/mqbroker processes and the Swift `TransactionProducer`:
/// a half message stays invisible until END_TRANSACTION commits it (then it is visible exactly once) or rolls it
/// back (never visible); an UNKNOW decision is resolved by the broker's check; a producer that dies before its
/// decision is replaced by another of its group; a broker SIGKILLed between the half message and the decision
/// commits nothing twice and loses nothing. Visibility is read by pulling every queue of the topic; "the check
/// service is done with a message" is read from its saved progress (group CID_RMQ_SYS_TRANS), never a sleep.
@Suite(.serialized) struct TransactionTests {
    static let brokerName = "broker-t"
    static let fastChecks = "transactionCheckInterval=200\ntransactionTimeOut=1000"

    func makeTopic(_ broker: RunningBroker, _ topic: String) async throws {
        let admin = Admin(namesrvAddr: broker.nameServer.address)
        _ = try await admin.updateTopic(topic, brokerAddr: broker.address, cluster: nil, readQueueNums: 4, writeQueueNums: 4,
                                        perm: .readWrite, order: false)
        _ = await eventually(10) { (try? await admin.topicRoute(topic)) != nil }
        await admin.shutdown()
    }

    func makeProducer(_ broker: RunningBroker, group: String, checks: CheckLog, answer: LocalTransactionState) -> TransactionProducer {
        var config = ClientConfig(namesrvAddr: broker.nameServer.address)
        config.heartbeatBrokerIntervalMillis = 300  // a restarted broker learns the producer's connection soon
        var settings = Producer.Settings()
        settings.group = group
        let producer = TransactionProducer(config: config, settings: settings) { message in
            checks.add(message)
            return answer
        }
        producer.start()
        return producer
    }

    /// A broker (with `extraConfig`), `topic` with 4 queues and a started transaction producer of `group` whose
    /// check listener logs each check and answers `answer`.
    func setUp(_ topic: String, group: String, answer: LocalTransactionState, extraConfig: String) async throws
        -> (RunningBroker, CheckLog, TransactionProducer) {
        let broker = try RunningBroker(extraConfig: extraConfig)
        try await makeTopic(broker, topic)
        let checks = CheckLog()
        return (broker, checks, makeProducer(broker, group: group, checks: checks, answer: answer))
    }

    /// Every message of `topic` a consumer can pull, from each queue's first offset to its last.
    func visible(_ broker: RunningBroker, _ topic: String) async throws -> [MessageExt] {
        let consumer = PullConsumer(group: "CG-tx-reader", namesrvAddr: broker.nameServer.address)
        consumer.start()
        var messages: [MessageExt] = []
        do {
            for queue in try await consumer.fetchSubscribeMessageQueues(topic) {
                var offset = try await consumer.minOffset(queue)
                for _ in 0..<100 {
                    let result = try await consumer.pull(queue, offset: offset, maxNums: 32)
                    messages += result.messages
                    guard result.status == .found else { break }
                    offset = result.nextBeginOffset
                }
            }
        } catch {
            await consumer.shutdown()
            throw error
        }
        await consumer.shutdown()
        return messages
    }

    /// The check service's saved progress through the half queue (its next offset), or nil before it saved any.
    func checkProgress(_ broker: RunningBroker) async -> Int64? {
        let consumer = PullConsumer(group: "CID_RMQ_SYS_TRANS", namesrvAddr: broker.nameServer.address)
        consumer.start()
        let queue = MessageQueue(topic: TopicValidator.transactionHalfTopic, brokerName: Self.brokerName, queueID: 0)
        _ = try? await consumer.fetchSubscribeMessageQueues(TopicValidator.transactionHalfTopic)
        let offset = try? await consumer.fetchConsumeOffset(queue)
        await consumer.shutdown()
        return offset ?? nil
    }

    /// Waits until the check service has moved past every half message stored so far (so any later check or
    /// commit would already have happened).
    func checkServicePassedEveryHalfMessage(_ broker: RunningBroker) async throws -> Bool {
        let consumer = PullConsumer(group: "CG-tx-reader", namesrvAddr: broker.nameServer.address)
        consumer.start()
        let queue = MessageQueue(topic: TopicValidator.transactionHalfTopic, brokerName: Self.brokerName, queueID: 0)
        _ = try await consumer.fetchSubscribeMessageQueues(TopicValidator.transactionHalfTopic)
        let end = try await consumer.maxOffset(queue)
        await consumer.shutdown()
        return await eventually(30) { (await checkProgress(broker) ?? -1) >= end }
    }

    @Test func committedIsVisibleExactlyOnceAndRolledBackNever() async throws {
        // The local transaction pulls every queue before it decides, which can take over a second on a loaded machine:
        // a long timeout keeps the check service from asking (and rolling back) a transaction still being decided.
        let (broker, checks, producer) = try await setUp("TxBasic", group: "PG-tx-basic", answer: .rollbackMessage,
                                                         extraConfig: "transactionCheckInterval=200\ntransactionTimeOut=30000")
        let seenDuringTransaction = Mutex<[String]?>(nil)
        let message = Message(topic: "TxBasic", body: "committed", tags: "TagA", keys: ["order-1"], properties: ["color": "red"])
        let committed = try await producer.sendMessageInTransaction(message) { _ in
            // The half message is stored now; no consumer may see it before the decision.
            let bodies = (try? await visible(broker, "TxBasic").map(\.bodyString)) ?? ["<pull failed>"]
            seenDuringTransaction.withLock { $0 = bodies }
            return .commitMessage
        }
        #expect(committed.sendResult.status == .sendOK)
        #expect(committed.localTransactionState == .commitMessage)
        #expect(seenDuringTransaction.withLock { $0 } == [])
        let rolledBack = try await producer.sendMessageInTransaction(Message(topic: "TxBasic", body: "rolled-back")) { _ in .rollbackMessage }
        #expect(rolledBack.localTransactionState == .rollbackMessage)
        #expect(await eventually(10) { (try? await visible(broker, "TxBasic").count) == 1 })
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        let all = try await visible(broker, "TxBasic")
        #expect(all.map(\.bodyString) == ["committed"])
        let stored = try #require(all.first)
        #expect(stored.tags == "TagA" && stored.keys == ["order-1"] && stored.property("color") == "red")
        #expect(stored.property(MessageConst.uniqueClientMessageIDKeyIndex) == committed.transactionID)
        #expect(stored.property(MessageConst.realTopic) == nil && stored.property(MessageConst.transactionPrepared) == nil)
        #expect(stored.sysFlag.transactionType == .transactionCommit)
        #expect(checks.count == 0, "decided transactions are never checked")
        // Decisions naming no half message are refused with a reason; the broker keeps serving.
        let client = RemotingClient(group: MultiThreadedEventLoopGroup.singleton)
        for (offset, group) in [("12345", "PG-tx-basic"), ("999999999999", "PG-tx-basic"), ("-1", "PG-tx-basic"),
                                (MessageID(hex: committed.sendResult.offsetMsgID).map { "\($0.commitLogOffset)" } ?? "0", "PG-other")] {
            let refused = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.endTransaction, opaque: 0, extFields: [
                "producerGroup": group, "tranStateTableOffset": "\(committed.sendResult.queueOffset)", "commitLogOffset": offset,
                "commitOrRollback": "8", "fromTransactionCheck": "false",
            ]))
            #expect(refused.code == ResponseCode.systemError, "END_TRANSACTION at \(offset) for \(group): \(refused.remark ?? "")")
        }
        let badDecision = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.endTransaction, opaque: 0, extFields: [
            "producerGroup": "PG-tx-basic", "tranStateTableOffset": "0", "commitLogOffset": "0", "commitOrRollback": "5",
        ]))
        #expect(badDecision.code == ResponseCode.systemError)
        await client.close()
        #expect(try await visible(broker, "TxBasic").map(\.bodyString) == ["committed"])
        await producer.shutdown()
    }

    @Test func unknownIsResolvedByTheCheckAfterItsImmunity() async throws {
        let (broker, checks, producer) = try await setUp("TxUnknown", group: "PG-tx-unknown", answer: .commitMessage, extraConfig: Self.fastChecks)
        var message = Message(topic: "TxUnknown", body: "decided-later")
        message.properties[MessageConst.checkImmunityTimeInSeconds] = "3"
        let result = try await producer.sendMessageInTransaction(message) { _ in .unknown }
        #expect(result.localTransactionState == .unknown)
        #expect(await eventually(20) { (try? await visible(broker, "TxUnknown").count) == 1 })
        let check = try #require(checks.all.first)
        #expect(check.message.topic == "TxUnknown")
        #expect(check.message.property(MessageConst.uniqueClientMessageIDKeyIndex) == result.transactionID)
        #expect(check.message.property(MessageConst.transactionCheckTimes) == "1")
        #expect(check.receivedMillis - check.message.bornTimestamp >= 3_000, "CHECK_IMMUNITY_TIME_IN_SECONDS holds the check back")
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(try await visible(broker, "TxUnknown").map(\.bodyString) == ["decided-later"])
        // A check answered after the next round began is asked again and answered again: still one commit.
        #expect(checks.all.allSatisfy { $0.message.property(MessageConst.uniqueClientMessageIDKeyIndex) == result.transactionID })
        await producer.shutdown()
    }

    @Test func aProducerThatDiesBeforeItsDecisionIsReplacedByAnotherOfItsGroup() async throws {
        let broker = try RunningBroker(extraConfig: Self.fastChecks)
        try await makeTopic(broker, "TxDeath")
        let firstChecks = CheckLog()
        let first = makeProducer(broker, group: "PG-tx-death", checks: firstChecks, answer: .rollbackMessage)
        let result = try await first.sendMessageInTransaction(Message(topic: "TxDeath", body: "survivor")) { _ in
            // The producer's connections drop without UNREGISTER_CLIENT, as when its process dies: END_TRANSACTION
            // cannot leave.
            await first.producer.client.shutdown()
            return .commitMessage
        }
        #expect(result.sendResult.status == .sendOK)
        let secondChecks = CheckLog()
        let second = makeProducer(broker, group: "PG-tx-death", checks: secondChecks, answer: .commitMessage)
        _ = try await second.producer.send(Message(topic: "TxDeath-ping", body: "connects the second producer"))
        #expect(await eventually(20) { (try? await visible(broker, "TxDeath").count) == 1 })
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(try await visible(broker, "TxDeath").map(\.bodyString) == ["survivor"])
        #expect(firstChecks.count == 0)
        #expect(secondChecks.count >= 1)
        #expect(secondChecks.all.first?.message.property(MessageConst.uniqueClientMessageIDKeyIndex) == result.transactionID)
        await second.shutdown()
    }

    @Test func aHalfMessageCheckedTransactionCheckMaxTimesIsDiscarded() async throws {
        let (broker, checks, producer) = try await setUp("TxDiscard", group: "PG-tx-discard", answer: .unknown, extraConfig: Self.fastChecks + "\ntransactionCheckMax=2")
        let result = try await producer.sendMessageInTransaction(Message(topic: "TxDiscard", body: "never")) { _ in .unknown }
        #expect(await eventually(30) {
            (try? await visible(broker, TopicValidator.transactionCheckMaxTimeTopic).count) == 1
        }, "the message moves to TRANS_CHECK_MAX_TIME_TOPIC")
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(checks.count == 2, "asked transactionCheckMax times, then discarded")
        let discarded = try await visible(broker, TopicValidator.transactionCheckMaxTimeTopic)
        #expect(discarded.first?.property(MessageConst.uniqueClientMessageIDKeyIndex) == result.transactionID)
        #expect(try await visible(broker, "TxDiscard").isEmpty)
        await producer.shutdown()
    }

    @Test func aBrokerKilledBetweenHalfAndDecisionCommitsOnceAndLosesNothing() async throws {
        let (broker, checks, producer) = try await setUp("TxRestart", group: "PG-tx-restart", answer: .commitMessage, extraConfig: Self.fastChecks)
        let before = try await producer.sendMessageInTransaction(Message(topic: "TxRestart", body: "committed-before")) { _ in .commitMessage }
        _ = try await producer.sendMessageInTransaction(Message(topic: "TxRestart", body: "rolled-back-before")) { _ in .rollbackMessage }
        #expect(await eventually(10) { (try? await visible(broker, "TxRestart").count) == 1 })
        // SIGKILL between the half message and END_TRANSACTION; the decision reaches the restarted broker (whose
        // check service may ask about the same message first: the two decisions must commit once).
        _ = try await producer.sendMessageInTransaction(Message(topic: "TxRestart", body: "committed-across-restart")) { _ in
            broker.process?.killHard()
            try? broker.start()
            return .commitMessage
        }
        // SIGKILL again before the decision, which is lost with the broker: the check after the restart decides.
        _ = try await producer.sendMessageInTransaction(Message(topic: "TxRestart", body: "decided-by-check")) { _ in
            broker.process?.killHard()
            return .commitMessage
        }
        try broker.start()
        let expected = ["committed-across-restart", "committed-before", "decided-by-check"]
        #expect(await eventually(30) { (try? await visible(broker, "TxRestart").map(\.bodyString).sorted()) == expected })
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(checks.all.allSatisfy { $0.message.bodyString != "committed-before" && $0.message.bodyString != "rolled-back-before" })
        // The same decision again (a late or repeated END_TRANSACTION) changes nothing.
        let client = RemotingClient(group: MultiThreadedEventLoopGroup.singleton)
        let offsetID = try #require(MessageID(hex: before.sendResult.offsetMsgID))
        let repeated = try await client.invoke(broker.address, RemotingCommand(code: RequestCode.endTransaction, opaque: 0, extFields: [
            "producerGroup": "PG-tx-restart", "tranStateTableOffset": "\(before.sendResult.queueOffset)",
            "commitLogOffset": "\(offsetID.commitLogOffset)", "commitOrRollback": "8", "fromTransactionCheck": "false",
        ]))
        #expect(repeated.code == ResponseCode.success)
        await client.close()
        // A restart that lost the check service's unsaved progress decides nothing a second time.
        broker.process?.killHard()
        try broker.start()
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(try await visible(broker, "TxRestart").map(\.bodyString).sorted() == expected)
        await producer.shutdown()
    }

    @Test func brokerConfKeysAreCheckedAndRejectTransactionMessageRefusesHalfMessages() async throws {
        var config = BrokerConfig(storePathRootDir: "/tmp/unused")
        #expect(try config.set("transactionTimeOut", "2500") && config.transaction.transactionTimeOutMillis == 2_500)
        #expect(try config.set("transactionCheckInterval", "200") && config.transaction.transactionCheckIntervalMillis == 200)
        #expect(try config.set("transactionCheckMax", "3") && config.transaction.transactionCheckMax == 3)
        #expect(throws: PropertiesFile.ConfigError.self) { try config.set("transactionCheckInterval", "soon") }
        #expect(throws: PropertiesFile.ConfigError.self) { try config.set("rejectTransactionMessage", "yes") }
        let broker = try RunningBroker(extraConfig: "rejectTransactionMessage=true")
        try await makeTopic(broker, "TxRejected")
        let producer = makeProducer(broker, group: "PG-tx-rejected", checks: CheckLog(), answer: .commitMessage)
        let executed = Mutex(false)
        do {
            _ = try await producer.sendMessageInTransaction(Message(topic: "TxRejected", body: "refused")) { _ in
                executed.withLock { $0 = true }
                return .commitMessage
            }
            Issue.record("a half message was taken with rejectTransactionMessage=true")
        } catch ClientError.broker(let code, _, _) {
            #expect(code == ResponseCode.noPermission)
        }
        #expect(!executed.withLock { $0 }, "the local transaction does not run when the half message was refused")
        // Ordinary messages still go through.
        #expect(try await producer.producer.send(Message(topic: "TxRejected", body: "plain")).status == .sendOK)
        await producer.shutdown()
    }

    @Test func recentKeysForgetTheOldestBeyondTheirCapacity() {
        var keys = RecentKeys(capacity: 3)
        for key in ["a", "b", "c", "a"] { keys.insert(key) }
        #expect(keys.contains("a") && keys.contains("b") && keys.contains("c"))
        keys.insert("d")
        #expect(!keys.contains("a") && keys.contains("b") && keys.contains("d"))
        keys.insert("e")
        #expect(!keys.contains("b") && keys.contains("c") && keys.contains("e"))
    }

    @Test func aHalfMessageThatCannotBePutBackIsDiscardedWithoutHoldingTheQueue() async throws {
        let (broker, checks, producer) = try await setUp("TxBig", group: "PG-tx-big", answer: .commitMessage, extraConfig: Self.fastChecks)
        // Properties that fit once stored (with REAL_TOPIC/REAL_QID) but not with TRANSACTION_CHECK_TIMES added.
        var big = Message(topic: "TxBig", body: "too-big-to-check")
        big.properties[MessageConst.uniqueClientMessageIDKeyIndex] = "0123456789ABCDEF0123456789ABCDEF"
        big.properties[MessageConst.waitStoreMsgOK] = "true"
        big.properties[MessageConst.transactionPrepared] = "true"
        big.properties[MessageConst.producerGroup] = "PG-tx-big"
        let storedBytesMax = MessageProperties.byteCountMax - 10
        let realBytes = ("REAL_TOPIC" + "TxBig" + "REAL_QID" + "0").utf8.count + 4
        big.properties["pad"] = String(repeating: "x", count: storedBytesMax - big.properties.byteCount - realBytes - 5)
        _ = try await producer.sendMessageInTransaction(big) { _ in .unknown }
        _ = try await producer.sendMessageInTransaction(Message(topic: "TxBig", body: "after-big")) { _ in .unknown }
        #expect(await eventually(20) { (try? await visible(broker, "TxBig").map(\.bodyString)) == ["after-big"] })
        #expect(try await checkServicePassedEveryHalfMessage(broker))
        #expect(try await visible(broker, TopicValidator.transactionCheckMaxTimeTopic).map(\.bodyString) == ["too-big-to-check"])
        #expect(checks.all.allSatisfy { $0.message.bodyString == "after-big" })
        await producer.shutdown()
    }
}
