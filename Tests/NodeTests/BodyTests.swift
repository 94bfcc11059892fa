import Common
import NIOCore
import Remoting
import Testing

/// Every body type against bytes shaped like the protocol reference's (§4): decoded field by field, encoded back
/// byte for byte where our writer's order is the reference's, and round-tripped.
@Suite struct BodyTests {
    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func roundTrips<Body: RemotingBody & Equatable>(_ body: Body) throws {
        #expect(try Body.decode(from: body.encode()) == body)
    }

    @Test func topicRouteDataReadsAndWritesBothForms() throws {
        let form1 = #"{"brokerDatas":[{"brokerAddrs":{0:"192.168.0.10:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
        let form2 = #"{"brokerDatas":[{"brokerAddrs":{"0":"192.168.0.10:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
        #expect(form1.utf8.count == 236)
        #expect(form2.utf8.count == 238)
        var route = try TopicRouteData.decode(from: bytes(form1))
        #expect(route == (try TopicRouteData.decode(from: bytes(form2))))
        #expect(route.queueDatas == [QueueData(brokerName: "broker-a", readQueueNums: 4, writeQueueNums: 4, perm: .readWrite)])
        #expect(route.brokerDatas[0].brokerAddrs == [0: "192.168.0.10:10911"])
        #expect(route.masterAddress("broker-a") == "192.168.0.10:10911")
        #expect(String(buffer: route.encode()) == form1)
        route.quotedKeys = true
        #expect(String(buffer: route.encode()) == form2)
    }

    @Test func heartbeatDataReadsCAndJavaShapes() throws {
        let c = "{\"clientID\":\"26781-127.0.0.1@DEFAULT\",\"consumerDataSet\":[{\"consumeFromWhere\":0,\"consumeType\":1,\"groupName\":\"CG_PUSH_CLUSTERING\",\"messageModel\":1,\"subscriptionDataSet\":[{\"subString\":\"*\",\"subVersion\":\"1795367867073\",\"topic\":\"%RETRY%CG_PUSH_CLUSTERING\"},{\"codeSet\":[0,0],\"subString\":\"TagA||TagB\",\"subVersion\":\"1795367867073\",\"tagsSet\":[\"TagA\",\"TagB\"],\"topic\":\"TopicPush\"}]}],\"producerDataSet\":[{\"groupName\":\"PG_TEST\"}]}\n"
        let fromC = try HeartbeatData.decode(from: bytes(c))
        #expect(fromC.clientID == "26781-127.0.0.1@DEFAULT")
        #expect(fromC.producerGroups == ["PG_TEST"])
        let consumer = try #require(fromC.consumerDataSet.first)
        #expect(consumer.messageModel == .clustering)
        #expect(consumer.subscriptionDataSet.map(\.topic) == ["%RETRY%CG_PUSH_CLUSTERING", "TopicPush"])
        #expect(consumer.subscriptionDataSet[0].codeSet == nil)
        // C sends atoi(tag) codes (zeros); the broker recomputes Java hashes from the expression.
        #expect(consumer.subscriptionDataSet[1].codeSet == [2_598_919, 2_598_920])
        #expect(consumer.subscriptionDataSet[1].subVersion == 1_795_367_867_073)
        let java = #"{"clientID":"192.168.0.2@12345#98765432101234","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"cg","messageModel":"BROADCASTING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919,2598920],"expressionType":"TAG","subString":"TagA || TagB","subVersion":1700000000000,"tagsSet":["TagA","TagB"],"topic":"TopicTest"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}"#
        let fromJava = try HeartbeatData.decode(from: bytes(java))
        #expect(fromJava.consumerDataSet[0].messageModel == .broadcasting)
        #expect(fromJava.consumerDataSet[0].subscriptionDataSet[0].tagsSet == ["TagA", "TagB"])
        try roundTrips(fromC)
        try roundTrips(fromJava)
        #expect(throws: BodyError.self) { try HeartbeatData.decode(from: bytes("{\"consumerDataSet\":[]}")) }
    }

    @Test func clusterInfoKeepsFastjsonBareBrokerIDs() throws {
        let text = #"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"192.168.0.10:10911",1:"192.168.0.11:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#
        let info = try ClusterInfo.decode(from: bytes(text))
        #expect(info.brokerAddrTable["broker-a"]?.brokerAddrs == [0: "192.168.0.10:10911", 1: "192.168.0.11:10911"])
        #expect(info.clusterAddrTable == ["DefaultCluster": ["broker-a"]])
        #expect(String(buffer: info.encode()) == text)
    }

    @Test func smallBodiesMatchTheReference() throws {
        let topics = #"{"topicList":["TopicTest","TBW102","%RETRY%cg"]}"#
        #expect(String(buffer: try TopicList.decode(from: bytes(topics)).encode()) == topics)
        let kv = #"{"table":{"brokerVersion":"407","msgPutTotalTodayNow":"12"}}"#
        #expect(try KVTable.decode(from: bytes(kv)).table == ["brokerVersion": "407", "msgPutTotalTodayNow": "12"])
        #expect(String(buffer: try KVTable.decode(from: bytes(kv)).encode()) == kv)
        let consumers = #"{"consumerIdList":["26781-127.0.0.1@DEFAULT","26967-127.0.0.1@DEFAULT"]}"#
        #expect(String(buffer: try ConsumerListBody.decode(from: bytes(consumers)).encode()) == consumers)
        let lock = "{\"clientId\":\"26967-127.0.0.1@DEFAULT\",\"consumerGroup\":\"CG_PUSH_CLUSTERING_O\",\"mqSet\":[{\"brokerName\":\"broker-a\",\"queueId\":0,\"topic\":\"TopicPush\"}]}\n"
        let request = try LockBatchRequestBody.decode(from: bytes(lock))
        #expect(request.mqSet == [MessageQueue(topic: "TopicPush", brokerName: "broker-a", queueID: 0)])
        #expect(String(buffer: request.encode()) + "\n" == lock)
        let locked = #"{"lockOKMQSet":[{"brokerName":"broker-a","queueId":0,"topic":"TopicPush"}]}"#
        #expect(String(buffer: try LockBatchResponseBody.decode(from: bytes(locked)).encode()) == locked)
    }

    @Test func registerBrokerBodyAndTopicConfigsMatchTheReference() throws {
        let text = #"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1700000000000},"topicConfigTable":{"TopicTest":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}}}}"#
        let body = try RegisterBrokerBody.decode(from: bytes(text))
        let wrapper = body.topicConfigSerializeWrapper
        #expect(wrapper.dataVersion == DataVersion(counter: 3, timestamp: 1_700_000_000_000))
        #expect(wrapper.topicConfigTable["TopicTest"] == TopicConfig(topicName: "TopicTest", readQueueNums: 4, writeQueueNums: 4))
        #expect(String(buffer: body.encode()) == text)
        var tbw = TopicConfig(topicName: "TBW102", readQueueNums: 8, writeQueueNums: 8, perm: .all)
        tbw.order = false
        try roundTrips(RegisterBrokerBody(topicConfigSerializeWrapper: TopicConfigSerializeWrapper(topicConfigTable: ["TBW102": tbw])))
        // A wrapper without its table is corrupt, not empty.
        #expect(throws: BodyError.self) { try TopicConfigSerializeWrapper.decode(from: bytes(#"{"dataVersion":{"counter":1}}"#)) }
        #expect(throws: BodyError.self) { try TopicConfigSerializeWrapper.decode(from: bytes(#"{"topicConfigTabel":{}}"#)) }
    }

    @Test func statsBodiesUseFastjsonObjectKeys() throws {
        let stats = #"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"lastUpdateTimestamp":1700000000005,"maxOffset":8,"minOffset":0}}}"#
        let table = try TopicStatsTable.decode(from: bytes(stats))
        #expect(table.offsetTable[MessageQueue(topic: "TopicTest", brokerName: "broker-a", queueID: 0)]
            == TopicOffset(minOffset: 0, maxOffset: 8, lastUpdateTimestamp: 1_700_000_000_005))
        #expect(String(buffer: table.encode()) == stats)
        let consume = #"{"consumeTps":0.0,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:{"brokerOffset":8,"consumerOffset":8,"lastTimestamp":1700000000005}}}"#
        let progress = try ConsumeStats.decode(from: bytes(consume))
        #expect(progress.consumeTps == 0)
        #expect(String(buffer: progress.encode()) == consume)
        // Unmeasured TPS is left out rather than written as 0.
        #expect(!String(buffer: ConsumeStats(offsetTable: [:]).encode()).contains("consumeTps"))
    }

    @Test func configWrappersReadWhatRocketMQWrites() throws {
        let offsets = "{\n\t\"offsetTable\":{\n\t\t\"TopicTest@please_rename_unique_group_name\":{0:250,1:250,2:251,3:249}\n\t}\n}"
        let wrapper = try ConsumerOffsetSerializeWrapper.decode(from: bytes(offsets))
        #expect(wrapper.offsetTable["TopicTest@please_rename_unique_group_name"] == [0: 250, 1: 250, 2: 251, 3: 249])
        try roundTrips(wrapper)
        try roundTrips(DelayOffsetSerializeWrapper(dataVersion: DataVersion(counter: 2, timestamp: 5), offsetTable: [1: 7, 3: 9]))
        var group = SubscriptionGroupConfig(groupName: "g")
        group.retryMaxTimes = 3
        try roundTrips(SubscriptionGroupWrapper(subscriptionGroupTable: ["g": group]))
        #expect(throws: BodyError.self) { try ConsumerOffsetSerializeWrapper.decode(from: bytes(#"{"offsetTabel":{}}"#)) }
        #expect(throws: BodyError.self) { try ConsumerOffsetSerializeWrapper.decode(from: bytes(#"{"offsetTable":{"T@g":{"x":1}}}"#)) }
    }

    @Test func messageIDsRoundTripAndRefuseOtherText() throws {
        let id = MessageID(storeHost: NetAddress(ipv4: 192, 168, 0, 10, port: 10911), commitLogOffset: 0x1234_5678)
        #expect(id.hexString == "C0A8000A00002A9F0000000012345678")
        #expect(MessageID(hex: id.hexString) == id)
        #expect(MessageID(storeHost: NetAddress(ipv4: 192, 168, 0, 1, port: 10911), commitLogOffset: 0x1234).hexString
            == "C0A80001" + "00002A9F" + "0000000000001234")
        #expect(MessageID(hex: "7F000001000004D2C5F4B2D8A1B3C6D7") != nil)
        #expect(MessageID(hex: "not an id") == nil)
        #expect(MessageID(hex: String(repeating: "G", count: 32)) == nil)
    }

    @Test func propertiesCodecRoundTripsAndFindsValuesInPlace() throws {
        var properties = MessageProperties()
        properties["TAGS"] = "TagA"
        properties["KEYS"] = "k1 k2"
        properties["user"] = "v=1"
        let wire = properties.bytes
        #expect(wire == Array("TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}user\u{1}v=1\u{2}".utf8))
        #expect(MessageProperties(wire) == properties)
        #expect(properties.byteCount == wire.count)
        #expect(properties.userProperties == ["user": "v=1"])
        wire.withUnsafeBytes { raw in
            #expect(MessageProperties.value(of: "KEYS", in: raw).map { Array($0) } == Array("k1 k2".utf8))
            #expect(MessageProperties.value(of: "TAG", in: raw) == nil)
        }
        // A pair without its separator is skipped, and never makes a later key's value run into it.
        Array("junk\u{2}TAGS\u{1}B\u{2}".utf8).withUnsafeBytes { raw in
            #expect(MessageProperties.value(of: "TAGS", in: raw).map { Array($0) } == Array("B".utf8))
        }
    }

    /// A SEND header's properties are written into the header in place: the same bytes as the wire form
    /// (multi-byte characters and an empty value included), and nothing for no properties.
    @Test func propertiesWrittenIntoAHeaderMatchTheWireForm() throws {
        var properties = MessageProperties()
        properties.reserveCapacity(4)
        properties.append("TAGS", "é😀")
        properties.append("EMPTY", "")
        properties.append("UNIQ_KEY", String(repeating: "A", count: 32))
        var writer = HeaderFields.Writer(capacity: 4)
        writer.append("i", properties: properties)
        writer.append("j", properties: MessageProperties())
        writer.append("k", 1)
        let fields = writer.fields
        #expect(fields["i"].map { $0.withBytes { Array($0) } } == properties.bytes)
        #expect(fields["j"] == nil && fields["k"]?.int64 == 1)
        #expect(Array(writer.buffer.readableBytesView.prefix(7)) == [0, 1, UInt8(ascii: "i"), 0, 0, 0, UInt8(properties.byteCount)])
    }
}

/// The one JSON reader and writer: fastjson's shapes in, standard escapes out, nesting bounded.
@Suite struct JSONTests {
    @Test func deepNestingIsRefusedNotACrash() {
        for depth in [65, 1_000, 100_000] {
            let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
            let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(objects) }
        }
        #expect((try? JSONValue.parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60))) != nil)
    }

    @Test func fastjsonKeysAndEscapesParse() throws {
        let value = try JSONValue.parse(#"{0:"a",-1:"b",{"x":1}:2,"s":"q\"\\\u00e9\n","n":1.5,"t":true,"z":null}"#)
        #expect(value["0"]?.string == "a")
        #expect(value["-1"]?.string == "b")
        #expect(value[#"{"x":1}"#]?.int == 2)
        #expect(value["s"]?.string == "q\"\\é\n")
        #expect(value["n"]?.double == 1.5)
        #expect(value["t"]?.bool == true)
        #expect(value["z"] == .null)
        #expect(jsonString("a\"b\\\n\u{1}") == #""a\"b\\\n\u0001""#)
        // A number past Double's range is refused, not read as an infinity that writes back as null (found by
        // FuzzBodies), and so are the words Double(String) would take.
        for bad in ["{", "[1,]", "{\"a\"}", "\"open", "{} x", "{\"a\":tru}", "{\"n\":-1.5e3333}", "[1e999]", "[nan]", "[inf]"] {
            #expect(throws: JSONValue.ParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
    }
}
