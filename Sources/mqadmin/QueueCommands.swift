import ArgumentParser
import Client
import Common

struct QueryCq: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queryCq", abstract: "Print units of a consume queue (commit-log offset, size, tags code) from an index.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic") var topic: String
    @Option(name: .customShort("q"), help: "queue id") var queueID: Int32
    @Option(name: .customShort("i"), help: "first queue index (offset) to print") var index: Int64
    @Option(name: .customShort("c"), help: "how many units") var count = 10
    @Option(name: .customShort("b"), help: "broker address host:port (default: the topic's first broker's master)") var brokerAddr: String?
    @Option(name: .customShort("g"), help: "consumer group: say per unit whether its subscription takes it") var group: String?

    func validate() throws {
        guard (1...QueryConsumeQueueResponseBody.unitsMax).contains(count) else {
            throw ValidationError("-c must be within 1...\(QueryConsumeQueueResponseBody.unitsMax), not \(count)")
        }
        guard index >= 0 else { throw ValidationError("-i must be 0 or more, not \(index)") }
    }

    func run() async throws {
        try await withAdmin(options) { admin in
            var address = brokerAddr
            if address == nil {
                let route = try await admin.topicRoute(topic).route
                address = route.brokerDatas.first?.masterAddress
            }
            guard let address else { throw ClientError.illegalMessage("No topic route data!") }
            let (body, remark) = try await admin.queryConsumeQueue(address: address, topic: topic, queueID: queueID, index: index,
                                                                   count: count, group: group)
            guard let body else { throw ClientError.illegalMessage(remark ?? "no unit at index \(index) of \(queueID)@\(topic)") }
            let rule = "======================================"
            if let filterData = body.filterData { print("Filter data: \n\(filterData)\n" + rule) }
            print("Queue data: \nmax: \(body.maxQueueIndex), min: \(body.minQueueIndex)\n" + rule)
            for (offset, unit) in body.queueData.enumerated() {
                print("idx: \(index + Int64(offset))\n\(unit.javaDescription)\n" + rule)
            }
        }
    }
}
