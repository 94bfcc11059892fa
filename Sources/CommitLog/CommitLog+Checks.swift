#if canImport(Glibc)
import Glibc
#endif

extension CommitLog {
    /// Validates limits and returns the record size. Error text is built only on failure.
    func checkedSize(of message: MessageView) throws(StoreError) -> Int {
        if message.body.count > settings.maxMessageSize { throw tooLarge(message.body.count) }
        if message.topic.count > MessageRecord.topicLengthMax || message.topic.count == 0 { throw badTopic(message.topic.count) }
        if message.properties.count > MessageRecord.propertiesLengthMax { throw badProperties(message.properties.count) }
        if let flaw = MessageRecord.flaw(in: message) { throw StoreError.illegal(flaw) }
        let size = MessageRecord.size(of: message, storeHost: settings.storeHost)
        if size > settings.recordSizeMax { throw tooLarge(message.body.count) }
        return size
    }

    @usableFromInline @inline(never)
    func tooLarge(_ bodySize: Int) -> StoreError {
        StoreError(.messageTooLarge, "message body of \(bodySize) bytes exceeds maxMessageSize \(settings.maxMessageSize)")
    }
    @usableFromInline @inline(never)
    func badTopic(_ length: Int) -> StoreError {
        StoreError(.topicTooLong, "topic of \(length) bytes; it must have 1 to \(MessageRecord.topicLengthMax)")
    }
    @usableFromInline @inline(never)
    func badProperties(_ length: Int) -> StoreError {
        StoreError(.propertiesTooLong, "properties of \(length) bytes exceed \(MessageRecord.propertiesLengthMax)")
    }
}

extension MessageRecord {
    /// Why the store must not keep a message: recovery would read its record as damaged (and end the log
    /// there), so the append path refuses it up front.
    public enum Flaw: Sendable, Equatable {
        /// A zero byte in the topic or the properties: recovery reads zeros there as a tail never written.
        case zeroByteInTopic, zeroByteInProperties
        case queueIDOutOfRange(Int32)
        case bornHostPortOutOfRange(Int32)
    }

    /// The first flaw of `message`, or nil. Two `memchr`s and two compares: no allocation.
    @inlinable
    public static func flaw(in message: MessageView) -> Flaw? {
        if message.queueID < 0 || message.queueID > queueIDMax { return .queueIDOutOfRange(message.queueID) }
        if !message.bornHost.hasValidPort { return .bornHostPortOutOfRange(message.bornHost.port) }
        if let base = message.topic.baseAddress, memchr(base, 0, message.topic.count) != nil { return .zeroByteInTopic }
        if let base = message.properties.baseAddress, memchr(base, 0, message.properties.count) != nil {
            return .zeroByteInProperties
        }
        return nil
    }
}

extension StoreError {
    /// The error for a message with `flaw`; built only on this cold path.
    @usableFromInline @inline(never)
    static func illegal(_ flaw: MessageRecord.Flaw) -> StoreError {
        let what = switch flaw {
        case .zeroByteInTopic: "the topic holds a zero byte"
        case .zeroByteInProperties: "the properties hold a zero byte"
        case .queueIDOutOfRange(let id): "queue id \(id) is outside 0...\(MessageRecord.queueIDMax)"
        case .bornHostPortOutOfRange(let port): "born host port \(port) is outside 0...65535"
        }
        return StoreError(.messageIllegal, "\(what); nothing stored")
    }
}
