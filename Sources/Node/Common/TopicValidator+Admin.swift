/// What an admin may create: the rules `mqadmin updateTopic` checks before it connects and the broker's
/// UPDATE_AND_CREATE_TOPIC enforces again (one place, so the two cannot disagree).
extension TopicValidator {
    /// The permissions a topic may be created with: 2 (write), 4 (read), 6 (both), as `mqadmin updateTopic -p` offers.
    public static let creatablePermissions: Set<Int> = [2, 4, 6]

    /// Why `topic` cannot be created by an admin, or nil: RocketMQ's name rules (`^[%|a-zA-Z0-9_-]+$`, at most
    /// 127 bytes) and its system topics (with the `rmq_sys_` prefix), which only the broker creates.
    public static func refusal(creating topic: String) -> String? {
        if let problem = problem(with: topic) { return problem }
        if systemTopics.contains(topic) || topic.hasPrefix("rmq_sys_") { return "The topic[\(topic)] is conflict with system topic." }
        return nil
    }

    /// Why these queue counts or this permission cannot be set, or nil.
    public static func refusal(readQueueNums: Int, writeQueueNums: Int, perm: Int) -> String? {
        let queues = 1...TopicConfig.queueNumsMax
        guard queues.contains(readQueueNums) else { return "readQueueNums must be within 1...\(TopicConfig.queueNumsMax), not \(readQueueNums)" }
        guard queues.contains(writeQueueNums) else {
            return "writeQueueNums must be within 1...\(TopicConfig.queueNumsMax), not \(writeQueueNums)"
        }
        guard creatablePermissions.contains(perm) else { return "perm must be 2 (write), 4 (read) or 6 (read and write), not \(perm)" }
        return nil
    }
}
