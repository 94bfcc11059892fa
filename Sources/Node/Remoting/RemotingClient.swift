import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a remote call failed.
public enum RemotingError: Error, CustomStringConvertible, Sendable {
    case connectFailed(address: String, reason: String)
    case timeout(address: String, code: Int32, millis: Int64)
    case connectionClosed(address: String)
    case badAddress(String)

    public var description: String {
        switch self {
        case .connectFailed(let address, let reason): "cannot reach \(address) (\(reason))"
        case .timeout(let address, let code, let millis): "no answer from \(address) within \(millis) ms (request code \(code))"
        case .connectionClosed(let address): "connection to \(address) closed before the response"
        case .badAddress(let address): "bad address \(address): expected host:port"
        }
    }

    /// The peer and what went wrong with it, for a sentence that names the peer's role
    /// (`127.0.0.1:9876 (connection refused)` in `cannot reach NameServer ...`).
    public var peerAndReason: String {
        switch self {
        case .connectFailed(let address, let reason): "\(address) (\(reason))"
        case .timeout(let address, _, let millis): "\(address) (no answer within \(millis) ms)"
        case .connectionClosed(let address): "\(address) (connection closed)"
        case .badAddress(let address): "\(address) (not host:port)"
        }
    }

    /// Why a connection attempt (or a server's bind) failed, in words (`connection refused`, `address already in
    /// use`, `no connection within 3000 ms`) instead of SwiftNIO's structures, so a tool prints one line a user can
    /// act on.
    public static func connectReason(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError {
            if let first = failure.connectionErrors.first { return connectReason(first.error) }
            if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "cannot resolve \(failure.host): \(dns)" }
            return "no address for \(failure.host)"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if case ChannelError.connectTimeout(let amount) = error { return "no connection within \(amount.nanoseconds / 1_000_000) ms" }
        return "\(error)"
    }
}

/// A remoting client: one connection per address, requests multiplexed on it and matched to responses by
/// opaque (responses may come in any order), a timeout per request, one-way sends.
public final class RemotingClient: Sendable {
    let group: EventLoopGroup
    private let connections = Mutex<[String: EventLoopFuture<Channel>]>([:])
    /// Connected channels with their response matcher: the send path's lookup (no pipeline search per request).
    private let ready = Mutex<[String: (channel: Channel, handler: ClientHandler)]>([:])
    private let nextOpaque = Atomic<Int32>(1)
    /// Set by `close()`: later calls fail at once (the event loops may be gone, and a task queued on a
    /// shut-down loop would never complete its promise).
    private let closed = Atomic<Bool>(false)
    /// Requests the server sends on our connection (NOTIFY_CONSUMER_IDS_CHANGED...): code, fields, body.
    let onServerRequest: @Sendable (RemotingCommand, Channel) -> Void
    /// Plain-ACL credentials: when set, every request is signed (`AccessKey`, `Signature`, `SecurityToken`) before it
    /// leaves; nil costs nothing.
    public let credentials: SessionCredentials?

    public init(group: EventLoopGroup, credentials: SessionCredentials? = nil,
                onServerRequest: @escaping @Sendable (RemotingCommand, Channel) -> Void = { _, _ in }) {
        self.group = group
        self.credentials = credentials
        self.onServerRequest = onServerRequest
    }

    /// Sends `request` to `address` and waits for its response. A cancelled task stops waiting at once (a
    /// consumer stopping during a long-polling pull).
    public func invoke(_ address: String, _ request: RemotingCommand, timeoutMillis: Int64 = 3_000) async throws -> RemotingCommand {
        var request = request
        request.opaque = nextOpaque.wrappingAdd(1, ordering: .relaxed).oldValue & Int32.max
        if let credentials { request.sign(with: credentials) }
        let (channel, handler) = try await readyConnection(to: address)
        let promise = channel.eventLoop.makePromise(of: RemotingCommand.self)
        let sending = request
        let failure = RemotingError.timeout(address: address, code: sending.code, millis: timeoutMillis)
        channel.eventLoop.execute {
            handler.send(sending, waiter: .promise(promise), deadline: .now() + .milliseconds(timeoutMillis), failure: failure)
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.eventLoop.execute { handler.fail(opaque: sending.opaque, with: CancellationError()) }
        }
    }

    /// Sends `request` to `address` and waits for its response, the request encoded straight into the
    /// connection's outbound buffer and the caller suspended on a continuation: called on the connection's event
    /// loop (a task preferring `EventLoopTaskExecutor`), nothing is allocated and no thread is woken. Once sent,
    /// the request is not cancelled: it is answered or times out. Signed requests take `invoke(_:_:timeoutMillis:)`.
    nonisolated(nonsending) public func invoke(_ address: String, request: some RemotingRequest & Sendable,
                                               timeoutMillis: Int64) async throws -> RemotingCommand {
        if credentials != nil { return try await invoke(address, request.command(serializeType: .rocketmq), timeoutMillis: timeoutMillis) }
        let opaque = nextOpaque.wrappingAdd(1, ordering: .relaxed).oldValue & Int32.max
        // A connected address (the usual case) is found without an await: each async call is a task switch.
        let known = closed.load(ordering: .relaxed) ? nil : ready.withLock { $0[address] }
        let (channel, handler) = if let known { known } else { try await readyConnection(to: address) }
        try Task.checkCancellation()
        let failure = RemotingError.timeout(address: address, code: request.code, millis: timeoutMillis)
        let deadline = NIODeadline.now() + .milliseconds(timeoutMillis)
        return try await withUnsafeThrowingContinuation { continuation in
            if channel.eventLoop.inEventLoop {
                handler.send(request, opaque: opaque, waiter: .continuation(continuation), deadline: deadline, failure: failure)
            } else {
                channel.eventLoop.execute {
                    handler.send(request, opaque: opaque, waiter: .continuation(continuation), deadline: deadline, failure: failure)
                }
            }
        }
    }

    private func readyConnection(to address: String) async throws -> (Channel, ClientHandler) {
        guard !closed.load(ordering: .relaxed) else { throw RemotingError.connectionClosed(address: address) }
        if let known = ready.withLock({ $0[address] }) { return known }
        let channel = try await connection(to: address)
        let handler: ClientHandler
        do { handler = try await channel.pipeline.handler(type: ClientHandler.self).get() } catch {
            throw RemotingError.connectionClosed(address: address)  // closed between connect and send
        }
        if channel.isActive {
            ready.withLock { $0[address] = (channel, handler) }
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.ready.withLock { ready in if ready[address]?.channel === channel { ready[address] = nil } }
            }
        }
        return (channel, handler)
    }

    /// Sends `request` without waiting for (or wanting) a response; returns once it is in the connection's buffer
    /// (written with the other requests of the event-loop tick).
    public func invokeOneway(_ address: String, _ request: RemotingCommand) async throws {
        var request = request
        request.opaque = nextOpaque.wrappingAdd(1, ordering: .relaxed).oldValue & Int32.max
        request.flag |= RemotingCommand.onewayFlag
        if let credentials { request.sign(with: credentials) }
        let (channel, handler) = try await readyConnection(to: address)
        let sending = request
        let written = channel.eventLoop.inEventLoop ? handler.sendOneway(sending)
            : try await channel.eventLoop.submit { handler.sendOneway(sending) }.get()
        guard written else { throw RemotingError.connectionClosed(address: address) }
    }

    /// Closes every connection.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        ready.withLock { $0.removeAll() }
        let all = connections.withLock { connections -> [EventLoopFuture<Channel>] in
            defer { connections.removeAll() }
            return Array(connections.values)
        }
        for future in all { try? await future.get().close() }
    }

    private func connection(to address: String) async throws -> Channel {
        let future: EventLoopFuture<Channel> = try connections.withLock { connections in
            if let existing = connections[address] { return existing }
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65_535).contains(port)
            else {
                throw RemotingError.badAddress(address)
            }
            let host = String(address[..<colon])
            let onServerRequest = onServerRequest
            let connecting = ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(3))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Our requests are encoded by the ClientHandler; the encoder after it writes the answers to
                        // the server's requests (written on the channel).
                        let handler = ClientHandler(address: address, onServerRequest: onServerRequest)
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(ClientFrameDecoder(handler: handler)), handler,
                            MessageToByteHandler(RemotingFrameEncoder()),
                        ])
                    }
                }
                .connect(host: host, port: port)
            connections[address] = connecting
            connecting.whenSuccess { [weak self] channel in
                channel.closeFuture.whenComplete { [weak self] _ in self?.forget(address, connecting) }
            }
            return connecting
        }
        do {
            return try await future.get()
        } catch {
            forget(address, future)
            throw RemotingError.connectFailed(address: address, reason: RemotingError.connectReason(error))
        }
    }

    private func forget(_ address: String, _ future: EventLoopFuture<Channel>) {
        connections.withLock { connections in
            if connections[address] === future { connections[address] = nil }
        }
    }
}
