import NIOCore
import Synchronization

/// What one server allows its connections (RocketMQ's `NettyServerConfig` limits, and ours): every bound is a
/// number, so no client can pin memory or a connection for ever.
public struct ConnectionLimits: Sendable {
    /// The largest frame (RocketMQ's 16 MiB).
    public var maxFrameBytes = RemotingFrameDecoder.defaultMaxFrameBytes
    /// A connection that sends nothing this long is closed (`serverChannelMaxIdleTimeSeconds`, 120 s; RocketMQ watches
    /// both directions, we watch reads only: every client sends a heartbeat at least every 30 s, and watching writes
    /// would cost a promise per response).
    public var idleTimeoutMillis: Int64 = 120_000
    /// A frame must arrive whole within this time of its first bytes (ours: a peer trickling one byte a minute
    /// keeps neither the connection nor the memory its announced frame reserves).
    public var frameReadTimeoutMillis: Int64 = 30_000
    /// Bytes all connections of the server may hold in frames not yet complete (ours). A frame that would take
    /// the server past it closes its connection, so thousands of unfinished 16 MiB frames cost at most this.
    public var pendingFrameBytesMax = 256 << 20

    public init() {}
}

/// The bytes reserved by unfinished frames across one server's connections.
public final class FrameBudget: Sendable {
    public let capacity: Int
    private let used = Atomic<Int>(0)

    public init(capacity: Int) { self.capacity = capacity }

    /// Reserves `bytes`; false (nothing reserved) when that would exceed the capacity.
    func reserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= capacity else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) { used.wrappingSubtract(bytes, ordering: .relaxed) }

    /// Bytes reserved now.
    public var reservedBytes: Int { used.load(ordering: .relaxed) }
}

/// Closes a connection idle for the limit (NIO's `IdleStateHandler` sends the event).
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let log: @Sendable (String) -> Void

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        log("remoting: closing \(context.remoteAddress.map { "\($0)" } ?? "?"): idle past the limit")
        context.close(promise: nil)
    }
}

/// Connections of one server: two relaxed atomic adds per connection, none per request.
public final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)
    private let accepted = Atomic<Int64>(0)

    func opened() {
        open.wrappingAdd(1, ordering: .relaxed)
        accepted.wrappingAdd(1, ordering: .relaxed)
    }

    func closed() { open.wrappingSubtract(1, ordering: .relaxed) }

    /// Connections open now.
    public var openCount: Int { open.load(ordering: .relaxed) }
    /// Connections accepted since the server started.
    public var acceptedCount: Int64 { accepted.load(ordering: .relaxed) }
}
