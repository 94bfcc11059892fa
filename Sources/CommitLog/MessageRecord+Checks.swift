#if canImport(Glibc)
import Glibc
#endif

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
