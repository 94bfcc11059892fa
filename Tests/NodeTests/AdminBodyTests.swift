import Common
import NIOCore
import Remoting
import Testing

/// The admin bodies RocketMQ's tools exchange with brokers and consumers, read in the shapes Java writes (fastjson
/// object keys for message queues, numbers for versions) and round-tripped; and the protocol version names.
@Suite struct AdminBodyTests {
    func roundTrips<Body: RemotingBody & Equatable>(_ body: Body) throws {
        #expect(try Body.decode(from: body.encode()) == body)
    }

    @Test func consumerAndProducerConnectionsReadJavasShape() throws {
        let java = #"{"connectionSet":[{"clientAddr":"10.0.0.2:51234","clientId":"10.0.0.2@1234","language":"JAVA","version":407}],"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000000,"tagsSet":[],"topic":"T"}}}"#
        let connection = try ConsumerConnection.decode(from: java)
        #expect(connection.connectionSet == [Connection(clientId: "10.0.0.2@1234", clientAddr: "10.0.0.2:51234", language: "JAVA", version: 407)])
        #expect(connection.subscriptionTable["T"]?.subString == "*")
        #expect(connection.messageModel == "CLUSTERING" && connection.minVersion == 407)
        try roundTrips(connection)
        try roundTrips(ProducerConnection(connectionSet: connection.connectionSet))
        #expect(String(buffer: ProducerConnection(connectionSet: connection.connectionSet).encode())
            == #"{"connectionSet":[{"clientAddr":"10.0.0.2:51234","clientId":"10.0.0.2@1234","language":"JAVA","version":407}]}"#)
    }

    @Test func resetOffsetBodyAndConsumeStatsListUseObjectKeys() throws {
        let java = #"{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:42,{"brokerName":"broker-a","queueId":0,"topic":"T"}:7}}"#
        let body = try ResetOffsetBody.decode(from: java)
        #expect(body.offsetTable == [MessageQueue(topic: "T", brokerName: "broker-a", queueID: 0): 7,
                                     MessageQueue(topic: "T", brokerName: "broker-a", queueID: 1): 42])
        #expect(String(buffer: body.encode()) == #"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:7,{"brokerName":"broker-a","queueId":1,"topic":"T"}:42}}"#)
        #expect(throws: BodyError.self) { try ResetOffsetBody.decode(from: #"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:"x"}}"#) }
        let stats = ConsumeStats(offsetTable: [MessageQueue(topic: "T", brokerName: "broker-a", queueID: 0):
                                                OffsetWrapper(brokerOffset: 10, consumerOffset: 4, lastTimestamp: 99)])
        let list = ConsumeStatsList(consumeStatsList: [("G1", [stats]), ("G2", [])], brokerAddr: "127.0.0.1:10911", totalDiff: 6)
        try roundTrips(list)
    }

    @Test func consumerRunningInfoRoundTripsAndReadsJavaProperties() throws {
        var info = ConsumerRunningInfo()
        info.properties = [ConsumerRunningInfo.propConsumeType: "CONSUME_PASSIVELY", "consumerGroup": "G"]
        info.subscriptionSet = [SubscriptionData(topic: "T", subString: "TagA || TagB", subVersion: 5)]
        var queue = ProcessQueueInfo()
        queue.commitOffset = 12
        queue.cachedMsgCount = 3
        queue.locked = true
        info.mqTable = [MessageQueue(topic: "T", brokerName: "broker-a", queueID: 2): queue]
        var status = ConsumeStatus()
        status.pullTPS = 12.5
        info.statusTable = ["T": status]
        try roundTrips(info)
        let java = #"{"jstack":"thread dump","mqTable":{},"properties":{"PROP_CONSUMER_START_TIMESTAMP":1700000000000,"PROP_CONSUME_TYPE":"CONSUME_ACTIVELY"},"statusTable":{},"subscriptionSet":[]}"#
        let decoded = try ConsumerRunningInfo.decode(from: java)
        #expect(decoded.properties[ConsumerRunningInfo.propConsumerStartTimestamp] == "1700000000000")
        #expect(decoded.jstack == "thread dump")
    }

    @Test func versionNamesFollowRocketMQsOrdinals() {
        #expect(MQVersion.description(0) == "V3_0_0_SNAPSHOT")
        #expect(MQVersion.description(407) == "V4_9_7")
        #expect(MQVersion.description(MQVersion.current) == "V4_9_7")
        #expect(MQVersion.description(99_999) == "V5_9_9")
        #expect(MQVersion.description(-3) == "V3_0_0_SNAPSHOT")
    }

    @Test func configBodiesAreKeyValueLines() throws {
        let pairs = try parseProperties("# comment\nbrokerPermission = 4\n\nflushDiskType=SYNC_FLUSH\r\n").get()
        #expect(pairs.map(\.0) == ["brokerPermission", "flushDiskType"] && pairs.map(\.1) == ["4", "SYNC_FLUSH"])
        #expect(throws: PropertiesError.self) { try parseProperties("justakey\n").get() }
    }
}
