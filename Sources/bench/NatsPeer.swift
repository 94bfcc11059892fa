#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import IndexFile
import Client
import Common
import Remoting
import NIOCore
import NIOPosix
import Synchronization

/// The peer in the comparison: NATS JetStream (Debian's `nats-server`, file storage) driven by the same
/// load loop as `bench producer`. A minimal NATS client on SwiftNIO: CONNECT, one inbox subscription, and
/// each publish waits for JetStream's ack on its own reply subject (the same sync request/answer as a
/// RocketMQ sync send).
final class NatsPeer {
    let directory: String
    let port: Int
    private var pid: pid_t = 0

    init() throws {
        let candidates: [String] = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        guard let server = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw ValidationErrorText("nats-server is not installed (apt-get install nats-server)")
        }
        directory = makeTemporaryDirectory("bench-nats")
        port = freeLoopbackPort()
        let arguments = [server, "-js", "-sd", directory + "/store", "-a", "127.0.0.1", "-p", "\(port)"]
        do {
            pid = try spawnLogged(arguments, log: directory + "/nats.log", readyText: "Server is ready", seconds: 20)
        } catch {
            removeTree(directory)
            throw error
        }
    }

    var version: String {
        let text = readTextFile(directory + "/nats.log") ?? ""
        for line in text.split(separator: "\n") {
            if let at = line.firstRange(of: "Version:") { return "nats-server " + String(line[at.upperBound...]).trimmingCharacters() }
        }
        return "nats-server"
    }

    func stop() {
        guard pid > 0 else { return }
        stopChild(pid, graceSeconds: 10)
        pid = 0
        removeTree(directory)
    }

    /// The same load as `bench producer` (sync publishes with acks) against a JetStream file stream.
    func run(threads: Int, size: Int, durationSeconds: Double, everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try await NatsClient.connect(port: port, group: group)
        let created = try await client.request(subject: "$JS.API.STREAM.CREATE.BENCH",
                                               payload: Array(#"{"name":"BENCH","subjects":["bench"],"storage":"file","retention":"limits"}"#.utf8))
        guard !String(decoding: created, as: UTF8.self).contains("\"error\"") else {
            throw ValidationErrorText("JetStream refused the stream: \(String(decoding: created, as: UTF8.self))")
        }
        let body = (0..<size).map { UInt8(97 + $0 % 26) }
        let result = try await driveLoad(threads: threads, durationSeconds: durationSeconds, messages: nil, perSend: 1, window: 1, size: size,
                                         mode: "sync", everySecond: everySecond) { _, _ in
            do {
                let ack = try await client.request(subject: "bench", payload: body)
                return ack.starts(with: Array(#"{"error""#.utf8)) || String(decoding: ack, as: UTF8.self).contains("\"error\"") ? .responseFailed : .ok
            } catch {
                return .sendFailed
            }
        }
        await client.close()
        try? await group.shutdownGracefully()
        return result
    }
}

/// A NATS connection: requests are PUBs with a unique reply subject under one wildcard inbox subscription.
final class NatsClient: Sendable {
    let channel: Channel
    let handler: NatsHandler
    private let next = Atomic<Int>(1)

    init(channel: Channel, handler: NatsHandler) {
        self.channel = channel
        self.handler = handler
    }

    static func connect(port: Int, group: EventLoopGroup) async throws -> NatsClient {
        let handler = NatsHandler()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(NatsDecoder()), handler])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let ponged = try await handler.expectPong(on: channel.eventLoop).get()
        var hello = channel.allocator.buffer(capacity: 128)
        hello.writeString("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB _INBOX.bench.* 1\r\nPING\r\n")
        try await channel.writeAndFlush(hello)
        try await ponged.get()
        return NatsClient(channel: channel, handler: handler)
    }

    func request(subject: String, payload: [UInt8]) async throws -> [UInt8] {
        let id = next.wrappingAdd(1, ordering: .relaxed).oldValue
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        var frame = channel.allocator.buffer(capacity: payload.count + 64)
        frame.writeString("PUB \(subject) _INBOX.bench.\(id) \(payload.count)\r\n")
        frame.writeBytes(payload)
        frame.writeString("\r\n")
        let channel = channel, handler = handler, request = frame
        channel.eventLoop.execute {
            handler.pending[id] = promise
            handler.write(request, on: channel)
        }
        return try await promise.futureResult.get()
    }

    func close() async { try? await channel.close() }
}

enum NatsEvent {
    case message(subject: String, payload: [UInt8])
    case ping, pong, other
}

/// Splits the NATS text protocol into events (MSG with its payload, PING, PONG, the rest).
struct NatsDecoder: ByteToMessageDecoder {
    typealias InboundOut = NatsEvent

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let lineEnd = buffer.readableBytesView.firstIndex(of: 10) else { return .needMoreData }
        let lineLength = lineEnd - buffer.readerIndex + 1
        // The line without its CR LF (compared as bytes: "\r\n" is one Character in Swift).
        let textLength = lineLength >= 2 && buffer.getInteger(at: lineEnd - 1, as: UInt8.self) == 13 ? lineLength - 2 : lineLength - 1
        let line = buffer.getString(at: buffer.readerIndex, length: textLength)!
        if line.hasPrefix("MSG ") {
            let parts = line.split(separator: " ")
            guard let size = parts.last.flatMap({ Int($0) }) else { throw ValidationErrorText("bad NATS MSG line: \(line)") }
            guard buffer.readableBytes >= lineLength + size + 2 else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: lineLength)
            let payload = buffer.readBytes(length: size)!
            buffer.moveReaderIndex(forwardBy: 2)
            context.fireChannelRead(wrapInboundOut(.message(subject: String(parts[1]), payload: payload)))
            return .continue
        }
        buffer.moveReaderIndex(forwardBy: lineLength)
        let event: NatsEvent = line == "PING" ? .ping : line == "PONG" ? .pong : .other
        if line.hasPrefix("-ERR") { throw ValidationErrorText("NATS: \(line)") }
        context.fireChannelRead(wrapInboundOut(event))
        return .continue
    }
}

/// Completes requests by reply subject, answers PINGs, flushes once per event-loop tick.
final class NatsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = NatsEvent
    var pending: [Int: EventLoopPromise<[UInt8]>] = [:]
    private var pong: EventLoopPromise<Void>?
    private var flushScheduled = false

    /// Registers for the next PONG (before the PING goes out); the inner future completes with it.
    func expectPong(on loop: EventLoop) -> EventLoopFuture<EventLoopFuture<Void>> {
        loop.submit {
            let promise = loop.makePromise(of: Void.self)
            self.pong = promise
            return promise.futureResult
        }
    }

    func write(_ frame: ByteBuffer, on channel: Channel) {
        channel.write(frame, promise: nil)
        if !flushScheduled {
            flushScheduled = true
            channel.eventLoop.execute {
                self.flushScheduled = false
                channel.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .message(let subject, let payload):
            guard let id = subject.split(separator: ".").last.flatMap({ Int($0) }), let promise = pending.removeValue(forKey: id) else { return }
            promise.succeed(payload)
        case .ping:
            var pong = context.channel.allocator.buffer(capacity: 6)
            pong.writeString("PONG\r\n")
            context.writeAndFlush(NIOAny(pong), promise: nil)
        case .pong:
            pong?.succeed()
            pong = nil
        case .other:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for (_, promise) in pending { promise.fail(ValidationErrorText("NATS connection closed")) }
        pending.removeAll()
        pong?.fail(ValidationErrorText("NATS connection closed"))
    }
}

/// `bench nats`: the peer alone, same load shape as `bench producer`.
struct NatsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nats",
        abstract: "The same sync-send load against a local NATS JetStream (file storage) for comparison.")
    @Option(name: .customShort("w"), help: "Sender threads") var threads = 64
    @Option(name: .customShort("s"), help: "Body size in bytes") var size = 1024
    @Option(help: "Seconds to run") var duration: Double = 20
    @Option(help: "Write the result as JSON to this file") var json: String?

    func run() async throws {
        lineBufferedOutput()
        let peer = try NatsPeer()
        defer { peer.stop() }
        print("bench nats: \(peer.version), JetStream file storage, \(threads) threads, \(size) B, \(format(duration, 0)) s")
        let result = try await peer.run(threads: threads, size: size, durationSeconds: duration) { print($0) }
        result.printSummary()
        if let json { writeFile(json, result.json + "\n") }
    }
}
