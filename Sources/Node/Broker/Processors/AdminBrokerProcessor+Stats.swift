import Common
import Remoting

extension AdminBrokerProcessor {
    /// VIEW_BROKER_STATS_DATA: statistic `statsName` of `statsKey` over the last minute, hour and day; an unknown
    /// statistic, or a key nothing was counted for, is SYSTEM_ERROR (as RocketMQ answers).
    func viewBrokerStatsData(_ request: RemotingCommand, _ header: RequestHeader) throws(RequestHeader.FieldError) -> RemotingCommand {
        let name = try header.string("statsName")
        let key = try header.string("statsKey")
        guard let data = services.statsItems.data(name: name, key: key) else {
            return .response(to: request, code: ResponseCode.systemError, remark: "The stats <\(name)> <\(key)> not exist")
        }
        return .response(to: request, code: ResponseCode.success, body: data.encode())
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO: the groups online with a subscription to `topic`, and those with an offset
    /// committed for it, sorted.
    func consumingGroups(of topic: String) -> [String] {
        var groups = Set(services.consumers.groups(subscribing: topic))
        groups.formUnion(services.offsets.groups(of: topic))
        return groups.sorted()
    }
}
