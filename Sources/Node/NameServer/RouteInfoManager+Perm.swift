import Common

extension RouteInfoManager {
    /// WIPE_WRITE_PERM_OF_BROKER / ADD_WRITE_PERM_OF_BROKER (RocketMQ's `operateWritePermOfBroker`): every topic
    /// `brokerName` serves loses WRITE (`wipe`), or gets READ and WRITE back. Lasts until the broker registers new
    /// topic data (its own permissions then count again).
    /// - Returns: how many topics were changed.
    public func operateWritePerm(brokerName: String, wipe: Bool) -> Int {
        tables.withLock { t in
            var count = 0
            for topic in t.topicQueues.keys {
                guard var queue = t.topicQueues[topic]?[brokerName] else { continue }
                queue.perm = wipe ? Permission(rawValue: queue.perm.rawValue & ~Permission.write.rawValue) : .readWrite
                t.topicQueues[topic]![brokerName] = queue
                count += 1
            }
            return count
        }
    }
}
