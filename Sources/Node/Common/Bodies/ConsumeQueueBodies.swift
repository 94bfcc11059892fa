import Remoting

/// One unit of a consume queue as QUERY_CONSUME_QUEUE reports it (`ConsumeQueueData.java`): where the message is
/// in the commit log, its size and tags code. The extension fields (`extendDataJson`, `bitMap`, `msg`) stay nil here:
/// this store has no consume queue extension; `eval` says whether the queried group's subscription takes the unit.
public struct ConsumeQueueData: Equatable, Sendable {
    public var physicOffset: Int64
    public var physicSize: Int32
    public var tagsCode: Int64
    public var extendDataJson: String?
    public var bitMap: String?
    public var eval: Bool
    public var msg: String?

    public init(physicOffset: Int64, physicSize: Int32, tagsCode: Int64, eval: Bool = false) {
        self.physicOffset = physicOffset
        self.physicSize = physicSize
        self.tagsCode = tagsCode
        self.eval = eval
    }

    init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "ConsumeQueueData")
        physicOffset = try body.int64("physicOffset")
        physicSize = try body.int32("physicSize")
        tagsCode = body.int64("tagsCode", default: 0)
        extendDataJson = body.optionalString("extendDataJson")
        bitMap = body.optionalString("bitMap")
        eval = body.bool("eval", default: false)
        msg = body.optionalString("msg")
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [("eval", .bool(eval)), ("physicOffset", .integer(physicOffset)),
                                              ("physicSize", .integer(Int64(physicSize))), ("tagsCode", .integer(tagsCode))]
        for (key, value) in [("bitMap", bitMap), ("extendDataJson", extendDataJson), ("msg", msg)] {
            if let value { members.append((key, .string(value))) }
        }
        return .object(members)
    }

    /// Java's `ConsumeQueueData.toString()`, as `mqadmin queryCq` prints each unit.
    public var javaDescription: String {
        "ConsumeQueueData{physicOffset=\(physicOffset), physicSize=\(physicSize), tagsCode=\(tagsCode), "
            + "extendDataJson='\(extendDataJson ?? "null")', bitMap='\(bitMap ?? "null")', eval=\(eval), msg='\(msg ?? "null")'}"
    }
}

/// QUERY_CONSUME_QUEUE's answer (`QueryConsumeQueueResponseBody.java`): the queue's index range and up to `count`
/// units from the asked index. `filterData` says when the asked group is not online for the topic;
/// `subscriptionData` is not sent (the broker keeps a group's tag codes, not its expression).
public struct QueryConsumeQueueResponseBody: Equatable, Sendable, RemotingBody {
    /// The most units one answer carries, whatever `count` asks for (bounds the answer's size).
    public static let unitsMax = 10_000

    public var filterData: String?
    public var queueData: [ConsumeQueueData]
    public var maxQueueIndex: Int64
    public var minQueueIndex: Int64

    public init(filterData: String? = nil, queueData: [ConsumeQueueData], maxQueueIndex: Int64, minQueueIndex: Int64) {
        self.filterData = filterData
        self.queueData = queueData
        self.maxQueueIndex = maxQueueIndex
        self.minQueueIndex = minQueueIndex
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "QueryConsumeQueueResponseBody")
        try body.requireObject()
        filterData = body.optionalString("filterData")
        let units = try body.array("queueData")
        guard units.count <= Self.unitsMax else { throw body.fail("\(units.count) units, more than \(Self.unitsMax)") }
        queueData = []
        for unit in units { queueData.append(try ConsumeQueueData(json: unit)) }
        maxQueueIndex = body.int64("maxQueueIndex", default: 0)
        minQueueIndex = body.int64("minQueueIndex", default: 0)
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = filterData.map { [("filterData", .string($0))] } ?? []
        members += [("maxQueueIndex", .integer(maxQueueIndex)), ("minQueueIndex", .integer(minQueueIndex)),
                    ("queueData", .array(queueData.map(\.json)))]
        return .object(members)
    }
}
