import Common
import Remoting

extension Admin {
    /// Every consumer group with a committed offset on some master, and the topics it consumes.
    public func consumerGroups() async throws -> [(group: String, topics: [String])] {
        var topicsOf: [String: Set<String>] = [:]
        for broker in try await clusterInfo() where broker.brokerID == BrokerData.masterID {
            let response = try await client.call(broker.address, code: RequestCode.getAllConsumerOffset)
            let table = try ConsumerOffsetSerializeWrapper.decode(from: response.body).offsetTable
            for key in table.keys {
                guard let at = key.firstIndex(of: "@") else { continue }
                topicsOf[String(key[key.index(after: at)...]), default: []].insert(String(key[..<at]))
            }
        }
        return topicsOf.map { ($0.key, $0.value.sorted()) }.sorted { $0.group < $1.group }
    }

    /// The client ids of a group's members connected to any master (empty when none is online).
    public func consumerIDs(group: String) async throws -> [String] {
        var ids: Set<String> = []
        for broker in try await clusterInfo() where broker.brokerID == BrokerData.masterID {
            let response = try await client.invoke(broker.address, code: RequestCode.getConsumerListByGroup, fields: ["consumerGroup": group])
            guard response.code == ResponseCode.success else { continue }  // SYSTEM_ERROR: no member on that broker
            ids.formUnion(try ConsumerListBody.decode(from: response.body).consumerIdList)
        }
        return ids.sorted()
    }

    /// Where `resetOffset` moves a group.
    public enum ResetTarget: String, Sendable, CaseIterable {
        case earliest, latest
    }

    /// Sets the group's committed offset of every queue of `topic` to the queue's min or max offset. Members online
    /// keep their own in-memory offsets and commit them again: reset a group while it is stopped.
    /// - Returns: each queue and the offset it now has.
    public func resetOffset(group: String, topic: String, to target: ResetTarget) async throws -> [(MessageQueue, Int64)] {
        var done: [(MessageQueue, Int64)] = []
        for stats in try await topicStats(topic) {
            let offset = target == .earliest ? stats.minOffset : stats.maxOffset
            try await client.updateOffset(stats.queue, group: group, offset: offset)
            done.append((stats.queue, offset))
        }
        return done
    }
}
