import CommitLog
import Common
import NIOCore
import Remoting
import Replication

/// One concern's requests (send, pull, client management, consumer management, admin, queries). The broker's
/// dispatcher routes each code to the processor that registered it.
protocol BrokerRequestProcessor: Sendable {
    /// The codes this processor answers.
    var codes: [Int32] { get }
    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?>
    /// A connection closed (consumers leave their groups).
    func connectionClosed(_ context: RequestContext)
}

extension BrokerRequestProcessor {
    func connectionClosed(_ context: RequestContext) {}
}

/// A processor whose answers are ready at once: handlers read the header through `RequestHeader`, so a missing
/// or malformed field is answered with SYSTEM_ERROR naming it.
protocol SynchronousProcessor: BrokerRequestProcessor {
    func answer(_ request: RemotingCommand, _ header: RequestHeader, context: RequestContext) throws(RequestHeader.FieldError)
        -> RemotingCommand
}

extension SynchronousProcessor {
    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        let response: RemotingCommand
        do throws(RequestHeader.FieldError) {
            response = try answer(request, RequestHeader(request), context: context)
        } catch {
            response = .response(to: request, error: error)
        }
        return context.eventLoop.makeSucceededFuture(response)
    }
}

/// The broker's `RemotingProcessor`: SEND goes straight to the send processor (the hot path takes no table
/// lookup), every other code through a table built once.
public struct BrokerProcessor: RemotingProcessor {
    let send: SendMessageProcessor
    let table: [Int32: any BrokerRequestProcessor]
    let all: [any BrokerRequestProcessor]

    init(send: SendMessageProcessor, others: [any BrokerRequestProcessor]) {
        self.send = send
        all = [send] + others
        var table: [Int32: any BrokerRequestProcessor] = [:]
        for processor in all {
            for code in processor.codes {
                precondition(table[code] == nil, "request code \(code) has two processors")
                table[code] = processor
            }
        }
        self.table = table
    }

    public func answer(_ request: RemotingCommand, context: RequestContext) -> RemotingAnswer {
        if RequestCode.isSend(request.code) { return send.answer(request, context: context) }
        return .later(process(request, context: context))
    }

    public func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        if RequestCode.isSend(request.code) { return send.process(request, context: context) }
        guard let processor = table[request.code] else {
            return context.eventLoop.makeSucceededFuture(
                .response(to: request, code: ResponseCode.requestCodeNotSupported, remark: " request type \(request.code) not supported"))
        }
        return processor.process(request, context: context)
    }

    public func connectionClosed(_ context: RequestContext) {
        for processor in all { processor.connectionClosed(context) }
    }
}

extension ResponseCode {
    /// The one mapping of put statuses to response codes.
    static func of(_ status: PutMessageStatus) -> Int32 {
        switch status {
        case .putOK: success
        case .flushDiskTimeout: flushDiskTimeout
        case .flushSlaveTimeout: flushSlaveTimeout
        case .slaveNotAvailable: slaveNotAvailable
        case .serviceNotAvailable: serviceNotAvailable
        case .messageIllegal: messageIllegal
        case .createMappedFileFailed, .unknownError, .inSyncReplicasNotEnough: systemError
        }
    }
}

extension NetAddress {
    /// A stored host as the wire's address (same bytes).
    init(_ host: HostAddress) {
        if host.isIPv6 {
            self.init(ipv6High: host.high, low: host.low, port: host.port)
        } else {
            self.init(ipv4: 0, 0, 0, 0, port: host.port)
            high = host.high
        }
    }
}

extension HostAddress {
    /// A peer's socket address as a stored host (no text in between).
    init(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4)?:
            let raw = UInt32(bigEndian: v4.address.sin_addr.s_addr)
            self.init(ipv4: UInt8(raw >> 24), UInt8(truncatingIfNeeded: raw >> 16), UInt8(truncatingIfNeeded: raw >> 8),
                      UInt8(truncatingIfNeeded: raw), port: Int32(UInt16(bigEndian: v4.address.sin_port)))
        default:
            self = .loopback
        }
    }

    /// `a.b.c.d` and a port (0.0.0.0 when it does not parse).
    init(ipv4 text: String, port: Int) {
        let parts = text.split(separator: ".").compactMap { UInt8($0) }
        let bytes = parts.count == 4 ? parts : [0, 0, 0, 0]
        self.init(ipv4: bytes[0], bytes[1], bytes[2], bytes[3], port: Int32(truncatingIfNeeded: port))
    }
}
