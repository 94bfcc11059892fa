import Common
import Remoting

extension Admin {
    /// The most topics a unique-key look-up without a topic searches (every topic the NameServers know, up to this).
    public static let uniqueKeySearchTopicsMax = 4_096

    /// The messages `queryMsgById` shows for `id`. An offset message id (store host and commit-log offset, what
    /// `#OffsetMsgId` prints) is read from that broker. Anything else — the client-made `#MsgId` (UNIQ_KEY), whose
    /// first digits decode to no usable address — or an offset id whose broker has no such message, is looked up as
    /// a unique key, as RocketMQ falls back to `queryMessageByUniqKey`: in `topic`, or in every topic when nil.
    /// - Returns: the messages found, oldest stored first; never empty.
    /// - Throws: `ClientError.illegalMessage` saying where it looked when nothing has that id.
    public func messages(byID id: String, topic: String?) async throws -> [MessageExt] {
        var offsetIDFailure: String?
        if let messageID = MessageID(hex: id), (1...65_535).contains(messageID.storeHost.port) {
            do { return [try await viewMessage(offsetMsgID: id)] } catch {
                offsetIDFailure = "\(error)"
            }
        }
        let found = try await messages(byUniqueKey: id, topic: topic)
        guard found.isEmpty else { return found }
        let searched = topic.map { "topic \($0)" } ?? "any topic"
        let viaOffset = offsetIDFailure.map { "as an offset id: \($0); " } ?? ""
        throw ClientError.illegalMessage("no message with id \(id) (\(viaOffset)as a unique key: not in \(searched))")
    }

    /// The messages whose unique key (UNIQ_KEY, the client-made `msgId`) is `key`, in `topic` or, when nil, in every
    /// topic the NameServers list (up to `uniqueKeySearchTopicsMax`); oldest stored first.
    public func messages(byUniqueKey key: String, topic: String?) async throws -> [MessageExt] {
        var found: [MessageExt] = []
        if let topic {
            found = try await queryMessage(topic: topic, key: key)
        } else {
            for name in try await topicList().prefix(Self.uniqueKeySearchTopicsMax) where !TopicValidator.systemTopics.contains(name) {
                // A topic listed but without a route (being deleted) has nothing to find.
                found += (try? await queryMessage(topic: name, key: key)) ?? []
            }
        }
        return found.filter { $0.property(MessageConst.uniqueClientMessageIDKeyIndex) == key }
            .sorted { $0.storeTimestamp < $1.storeTimestamp }
    }
}

extension Admin {
    /// QUERY_CONSUME_QUEUE to `address`: up to `count` units of queue `queueID` of `topic` from `index`.
    /// - Returns: the answer's body, or nil (with the broker's remark) when the index holds no unit.
    /// - Throws: `ClientError.broker` when the queue does not exist there.
    public func queryConsumeQueue(address: String, topic: String, queueID: Int32, index: Int64, count: Int, group: String?)
        async throws -> (body: QueryConsumeQueueResponseBody?, remark: String?) {
        var fields = ["topic": topic, "queueId": "\(queueID)", "index": "\(index)", "count": "\(count)"]
        if let group { fields["consumerGroup"] = group }
        let response = try await client.call(address, code: RequestCode.queryConsumeQueue, fields: fields)
        guard let body = response.body, body.readableBytes > 0 else { return (nil, response.remark) }
        return (try QueryConsumeQueueResponseBody.decode(from: body), response.remark)
    }
}
