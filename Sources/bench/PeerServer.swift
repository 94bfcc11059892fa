#if canImport(Glibc)
import Glibc
#endif
import IndexFile
import NIOCore
import NIOPosix
import Remoting

/// A peer's server (`nats-server`, `redis-server`) as a child process: the first installed of `candidates`,
/// on a free loopback port, with a fresh temporary directory that `stop()` removes with the process.
final class PeerServer {
    let directory: String
    let port: Int
    let log: String
    private(set) var pid: pid_t = 0

    /// Starts the server and waits (at most 20 s) until its log shows `readyText`.
    /// - Throws: when none of `candidates` is installed (naming `package`), or the server does not get ready.
    init(_ name: String, candidates: [String], package: String, readyText: String,
         arguments: (_ server: String, _ directory: String, _ port: Int) -> [String]) throws {
        guard let server = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw ValidationErrorText("\(name) is not installed (apt-get install \(package))")
        }
        directory = makeTemporaryDirectory("bench-\(name)")
        port = freeLoopbackPort()
        log = directory + "/\(name).log"
        do {
            pid = try spawnLogged(arguments(server, directory, port), log: log, readyText: readyText, seconds: 20)
        } catch {
            removeTree(directory)
            throw error
        }
    }

    func stop() {
        guard pid > 0 else { return }
        stopChild(pid, graceSeconds: 10)
        pid = 0
        removeTree(directory)
    }

    /// Connects a client on an event loop of its own (`connect`), runs `body` with it, then closes the
    /// connection and shuts the loop down on every path, error or not.
    static func withConnection<Client>(_ connect: (EventLoopGroup) async throws -> Client, close: (Client) async -> Void,
                                       _ body: (Client) async throws -> ProducerResult) async throws -> ProducerResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var client: Client?
        let outcome: Result<ProducerResult, Error>
        do {
            let connected = try await connect(group)
            client = connected
            outcome = .success(try await body(connected))
        } catch {
            outcome = .failure(error)
        }
        if let client { await close(client) }
        try? await group.shutdownGracefully()
        return try outcome.get()
    }
}

/// A TCP connection to 127.0.0.1:`port` (TCP_NODELAY) whose pipeline is `makeDecoder()`'s frames into `handler`.
func connectLoopback<Decoder: ByteToMessageDecoder>(port: Int, group: EventLoopGroup, makeDecoder: @escaping @Sendable () -> Decoder,
                                                    handler: some ChannelHandler & Sendable) async throws -> Channel {
    try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(makeDecoder()), handler])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
}

/// Writes of one event-loop tick flushed once: the first write of a tick schedules one flush for all of them
/// (many senders' requests leave in one syscall). Event-loop confined.
final class TickFlush: @unchecked Sendable {
    private var scheduled = false

    func write(_ frame: ByteBuffer, on channel: Channel) {
        channel.write(frame, promise: nil)
        guard !scheduled else { return }
        scheduled = true
        channel.eventLoop.execute {
            self.scheduled = false
            channel.flush()
        }
    }
}

/// What both peers' connection handlers share: requests written with `TickFlush`, timeouts found by one
/// `sweep()` every 50 ms (not a timer per request, like the Swift client's handler), and once the connection
/// closes (or a protocol error closes it) `failAll()` fails every waiter and `inactive` refuses new requests at
/// once. Subclasses keep the waiters and read the answers. Event-loop confined.
class PeerHandler<Answer>: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Answer
    let flush = TickFlush()
    private(set) var inactive = false
    private var sweeper: RepeatedTask?

    /// Fails the waiters whose deadline passed.
    func sweep() {}
    /// Fails every waiter: the connection is gone.
    func failAll() {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func handlerAdded(context: ChannelHandlerContext) {
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { [weak self] _ in
            self?.sweep()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { closed() }

    /// A protocol error (a bad frame, `-ERR`) ends the connection; its requests fail as SEND_FAILED.
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    private func closed() {
        inactive = true
        sweeper?.cancel()
        sweeper = nil
        failAll()
    }
}
