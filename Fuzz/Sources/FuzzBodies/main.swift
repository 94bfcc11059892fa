// Every remoting body over arbitrary bytes, through the one JSON reader (depth-bounded, fastjson's shapes).
// Invariants: no crash, no read outside the input, no stack overflow however deep the nesting; JSON that parses
// writes back to text that parses to the same value; a body that decodes encodes to bytes that decode to the
// same body.
import Common
import FuzzSupport
import NIOCore
import Remoting

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func seeds() -> [[UInt8]] {
    [
        #"{"brokerDatas":[{"brokerAddrs":{0:"192.168.0.10:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#,
        #"{"clientID":"c@1","consumerDataSet":[{"consumeFromWhere":0,"consumeType":1,"groupName":"G","messageModel":1,"subscriptionDataSet":[{"subString":"A||B","subVersion":"17","topic":"T"}]}],"producerDataSet":[{"groupName":"P"}]}"#,
        #"{"brokerAddrTable":{"b":{"brokerAddrs":{0:"h:1",1:"h:2"},"brokerName":"b","cluster":"c"}},"clusterAddrTable":{"c":["b"]}}"#,
        #"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":5,"maxOffset":8,"minOffset":0}}}"#,
        #"{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":8,"consumerOffset":8,"lastTimestamp":5}}}"#,
        #"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1},"topicConfigTable":{"T":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":4}}}}"#,
        #"{"offsetTable":{"T@g":{0:250,1:251}}}"#, #"{"table":{"k":"v","n":1}}"#,
        #"{"clientId":"c","consumerGroup":"g","mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}"#,
        #"{"s":"\u00e9\"\\\n","n":-1.5e3,"a":[true,false,null]}"#, "[[[[[[[[[[]]]]]]]]]]",
        #"{"n":-1.5e3333,"a":[1e999]}"#,  // past Double's range: refused (it once read as an infinity, written as null)
    ].map { Array($0.utf8) }
}

func roundTrips<Body: RemotingBody & Equatable>(_ type: Body.Type, _ buffer: ByteBuffer) {
    guard let body = try? Body.decode(from: buffer) else { return }
    guard let again = try? Body.decode(from: body.encode()) else { fuzzFailure("\(Body.self) encodes to bytes it cannot decode") }
    guard again == body else { fuzzFailure("\(Body.self) changed through encode and decode") }
}

fuzzMain(seeds: seeds) { bytes in
    if let value = try? JSONValue.parse(bytes) {
        guard let again = try? JSONValue.parse(value.compactText) else { fuzzFailure("written JSON does not parse: \(value.compactText)") }
        guard again == value else { fuzzFailure("JSON changed through writing: \(value.compactText)") }
        _ = value.rendered()
    }
    let buffer = ByteBuffer(bytes: bytes)
    roundTrips(TopicRouteData.self, buffer)
    roundTrips(HeartbeatData.self, buffer)
    roundTrips(ClusterInfo.self, buffer)
    roundTrips(TopicList.self, buffer)
    roundTrips(KVTable.self, buffer)
    roundTrips(ConsumerListBody.self, buffer)
    roundTrips(LockBatchRequestBody.self, buffer)
    roundTrips(LockBatchResponseBody.self, buffer)
    roundTrips(RegisterBrokerBody.self, buffer)
    roundTrips(TopicStatsTable.self, buffer)
    roundTrips(ConsumeStats.self, buffer)
    roundTrips(ConsumerOffsetSerializeWrapper.self, buffer)
    roundTrips(DelayOffsetSerializeWrapper.self, buffer)
    roundTrips(SubscriptionGroupWrapper.self, buffer)
    roundTrips(HARuntimeInfo.self, buffer)
}
