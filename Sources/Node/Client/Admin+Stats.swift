import Common
import Remoting

extension Admin {
    /// VIEW_BROKER_STATS_DATA to `address`: statistic `name` (`TOPIC_PUT_NUMS`, `GROUP_GET_NUMS`, ...) of `key` (a
    /// topic, or `topic@group`).
    /// - Throws: `ClientError.broker` when the broker counted nothing for the key.
    public func brokerStatsData(address: String, name: String, key: String) async throws -> BrokerStatsData {
        let response = try await client.call(address, code: RequestCode.viewBrokerStatsData, fields: ["statsName": name, "statsKey": key])
        return try BrokerStatsData.decode(from: response.body)
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO to every master of `topic`: the groups consuming it, sorted.
    public func consumingGroups(topic: String, masters: [String]) async throws -> [String] {
        var groups: Set<String> = []
        for address in masters {
            let response = try await client.call(address, code: RequestCode.queryTopicConsumeByWho, fields: ["topic": topic])
            groups.formUnion(try GroupList.decode(from: response.body).groupList)
        }
        return groups.sorted()
    }

    /// One line of `mqadmin statsAll`: a topic's puts, and one consuming group's gets and lag (`group` nil: no group
    /// consumes the topic).
    public struct TopicTraffic: Sendable {
        public var topic: String
        public var group: String?
        /// Messages stored but not yet consumed by the group, over all queues (never negative).
        public var accumulation: Int64 = 0
        public var inTPS: Double = 0
        public var outTPS: Double = 0
        public var inMsg24Hour: Int64 = 0
        public var outMsg24Hour: Int64 = 0
    }

    /// `topic`'s traffic on its masters over the last minute (TPS) and day, one row per consuming group, as
    /// RocketMQ's `statsAll` gathers it: a master that counted nothing for a key adds nothing.
    /// - Throws: when the topic has no route, or a master cannot be asked who consumes the topic.
    public func traffic(topic: String) async throws -> [TopicTraffic] {
        let masters = try await topicRoute(topic).route.brokerDatas.compactMap(\.masterAddress)
        var row = TopicTraffic(topic: topic)
        (row.inTPS, row.inMsg24Hour) = await summed("TOPIC_PUT_NUMS", key: topic, masters: masters)
        let groups = try await consumingGroups(topic: topic, masters: masters)
        guard !groups.isEmpty else { return [row] }
        var rows: [TopicTraffic] = []
        for group in groups {
            var grouped = row
            grouped.group = group
            (grouped.outTPS, grouped.outMsg24Hour) = await summed("GROUP_GET_NUMS", key: "\(topic)@\(group)", masters: masters)
            let lag = (try? await consumeProgress(group: group, topic: topic))?.reduce(Int64(0)) { $0 + $1.diff } ?? 0
            grouped.accumulation = max(0, lag)
            rows.append(grouped)
        }
        return rows
    }

    /// A statistic's minute TPS and 24-hour sum added over `masters` (a master without the key adds nothing).
    private func summed(_ name: String, key: String, masters: [String]) async -> (tps: Double, sum24Hours: Int64) {
        var total: (tps: Double, sum24Hours: Int64) = (0, 0)
        for address in masters {
            guard let data = try? await brokerStatsData(address: address, name: name, key: key) else { continue }
            total.tps += data.statsMinute.tps
            total.sum24Hours += data.sum24Hours
        }
        return total
    }
}
