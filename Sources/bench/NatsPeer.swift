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
/// each publish gets JetStream's ack on its own reply subject (the same request/answer as a RocketMQ send,
/// sync or with a window in flight), with the broker cells' 10 s timeout.
final class NatsPeer {
    static let candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
    static var installed: String? { candidates.first { access($0, X_OK) == 0 } }
    let server: PeerServer

    init() throws {
        server = try PeerServer("nats", candidates: Self.candidates,
                                package: "nats-server", readyText: "Server is ready") { server, directory, port in
            [server, "-js", "-sd", directory + "/store", "-a", "127.0.0.1", "-p", "\(port)"]
        }
    }

    var version: String {
        let text = readTextFile(server.log) ?? ""
        for line in text.split(separator: "\n") {
            if let at = line.firstRange(of: "Version:") { return "nats-server " + String(line[at.upperBound...]).trimmingCharacters() }
        }
        return "nats-server"
    }

    func stop() { server.stop() }

    /// The same load as `bench producer` against a JetStream file stream, under the same conditions as the
    /// broker's cells: the same plan (senders, time, sync or async with the same window), one warm-up publish
    /// before measuring, and the same 10 s request timeout. An ack is SEND_OK, a JetStream error answer
    /// RESPONSE_FAILED, a timeout or a lost connection SEND_FAILED.
    func run(_ plan: LoadPlan, everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        let (port, pid) = (server.port, server.pid)
        return try await PeerServer.withConnection({ group in
            try await NatsClient.connect(port: port, group: group, timeoutMillis: ProducerLoad.sendTimeoutMillis)
        }, close: { await $0.close() }) { client in
            try await Self.measure(plan, client: client, cpu: .processes([pid]), everySecond: everySecond)
        }
    }

    private static func measure(_ plan: LoadPlan, client: NatsClient, cpu: ServerCPUSource,
                                everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        try await createStream(client)
        let body = (0..<plan.size).map { UInt8(97 + $0 % 26) }
        // One warm-up publish, as the producer's warm-up send: the stream's first write, the first ack.
        let warmUp = try await client.request(subject: "bench", payload: [UInt8](repeating: 98, count: plan.size))
        guard outcome(ofAnswer: warmUp) == .sendOK else {
            throw ValidationErrorText("JetStream refused the warm-up publish: \(String(decoding: warmUp, as: UTF8.self))")
        }
        return try await driveLoad(plan, cpu: cpu, everySecond: everySecond) { _, _ in
            do {
                return outcome(ofAnswer: try await client.request(subject: "bench", payload: body))
            } catch {
                return .sendFailed
            }
        }
    }

    private static func createStream(_ client: NatsClient) async throws {
        let created = try await client.request(subject: "$JS.API.STREAM.CREATE.BENCH",
                                               payload: Array(#"{"name":"BENCH","subjects":["bench"],"storage":"file","retention":"limits"}"#.utf8))
        guard !String(decoding: created, as: UTF8.self).contains("\"error\"") else {
            throw ValidationErrorText("JetStream refused the stream: \(String(decoding: created, as: UTF8.self))")
        }
    }

    /// A publish's answer: a PubAck (`{"stream":"BENCH","seq":N}`) is SEND_OK; an error answer, or anything
    /// that is not an ack, RESPONSE_FAILED.
    static func outcome(ofAnswer answer: [UInt8]) -> SendOutcome {
        let text = String(decoding: answer, as: UTF8.self)
        return text.contains("\"error\"") || !text.contains("\"seq\"") ? .responseFailed : .sendOK
    }
}

/// A NATS connection: requests are PUBs with a unique reply subject under one wildcard inbox subscription.
final class NatsClient: Sendable {
    let channel: Channel
    let handler: NatsHandler
    /// How long a request waits for its answer (the broker cells' send timeout).
    let timeout: TimeAmount
    private let next = Atomic<Int>(1)

    init(channel: Channel, handler: NatsHandler, timeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
    }

    static func connect(port: Int, group: EventLoopGroup, timeoutMillis: Int64) async throws -> NatsClient {
        let handler = NatsHandler()
        let channel = try await connectLoopback(port: port, group: group, makeDecoder: { NatsDecoder() }, handler: handler)
        let ponged = try await handler.expectPong(on: channel.eventLoop).get()
        var hello = channel.allocator.buffer(capacity: 128)
        hello.writeString("CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB _INBOX.bench.* 1\r\nPING\r\n")
        try await channel.writeAndFlush(hello)
        try await ponged.get()
        return NatsClient(channel: channel, handler: handler, timeout: .milliseconds(timeoutMillis))
    }

    /// Publishes and waits for the answer on the request's own reply subject.
    /// - Throws: `NatsRequestError` when no answer comes within `timeout` or the connection closes.
    func request(subject: String, payload: [UInt8]) async throws -> [UInt8] {
        let id = next.wrappingAdd(1, ordering: .relaxed).oldValue
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        var frame = channel.allocator.buffer(capacity: payload.count + 64)
        frame.writeString("PUB \(subject) _INBOX.bench.\(id) \(payload.count)\r\n")
        frame.writeBytes(payload)
        frame.writeString("\r\n")
        let channel = channel, handler = handler, request = frame, deadline = NIODeadline.now() + timeout
        channel.eventLoop.execute {
            handler.send(request, id: id, promise: promise, deadline: deadline, on: channel)
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

/// Why a NATS request got no answer.
enum NatsRequestError: Error, CustomStringConvertible {
    case timedOut, connectionClosed
    var description: String { self == .timedOut ? "NATS request timed out" : "NATS connection closed" }
}

/// Completes requests by reply subject and answers PINGs (timeouts, flushing and closing: `PeerHandler`).
final class NatsHandler: PeerHandler<NatsEvent>, @unchecked Sendable {
    private var pending: [Int: (promise: EventLoopPromise<[UInt8]>, deadline: NIODeadline)] = [:]
    private var pong: EventLoopPromise<Void>?

    /// Registers for the next PONG (before the PING goes out); the inner future completes with it.
    func expectPong(on loop: EventLoop) -> EventLoopFuture<EventLoopFuture<Void>> {
        loop.submit {
            let promise = loop.makePromise(of: Void.self)
            self.pong = promise
            return promise.futureResult
        }
    }

    /// Registers a request until `deadline` and writes it; the write is flushed once per event-loop tick.
    func send(_ frame: ByteBuffer, id: Int, promise: EventLoopPromise<[UInt8]>, deadline: NIODeadline, on channel: Channel) {
        guard !inactive else { return promise.fail(NatsRequestError.connectionClosed) }
        pending[id] = (promise, deadline)
        flush.write(frame, on: channel)
    }

    override func sweep() {
        guard !pending.isEmpty else { return }
        let now = NIODeadline.now()
        for (id, entry) in pending where entry.deadline <= now {
            pending[id] = nil
            entry.promise.fail(NatsRequestError.timedOut)
        }
    }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .message(let subject, let payload):
            // A late answer (its request timed out) finds no entry and is dropped.
            guard let id = subject.split(separator: ".").last.flatMap({ Int($0) }), let entry = pending.removeValue(forKey: id) else { return }
            entry.promise.succeed(payload)
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

    override func failAll() {
        let failed = pending
        pending.removeAll()
        for (_, entry) in failed { entry.promise.fail(NatsRequestError.connectionClosed) }
        pong?.fail(NatsRequestError.connectionClosed)
        pong = nil
    }
}

/// `bench nats`: the peer alone, same load shape as `bench producer`.
struct NatsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nats",
        abstract: "The same send load against a local NATS JetStream (file storage) for comparison.",
        discussion: """
            Same conditions as `bench producer`: one warm-up publish before measuring, a 10 s request timeout, \
            sync (wait for each ack) or async (--window publishes in flight per sender). An ack counts as \
            SEND_OK, a JetStream error answer as RESPONSE_FAILED, a timeout or lost connection as SEND_FAILED.
            """)
    @Option(name: .customShort("w"), help: "Sender threads") var threads = 64
    @Option(name: .customShort("s"), help: "Body size in bytes") var size = 1024
    @Option(help: "Seconds to run") var duration: Double = 20
    @Option(help: "sync or async") var mode = "sync"
    @Option(help: "Async mode: publishes in flight per thread") var window = 16
    @Option(help: "Open loop: messages per second on a fixed schedule") var rate: Double?
    @Option(help: "Write the result as JSON to this file") var json: String?

    func validate() throws {
        guard threads > 0, size > 0, window > 0, duration > 0 else { throw ValidationError("-w, -s, --window and --duration must be positive") }
        guard ["sync", "async"].contains(mode) else { throw ValidationError("--mode must be sync or async") }
        if let rate { guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be positive") } }
    }

    func run() async throws {
        lineBufferedOutput()
        let peer = try NatsPeer()
        defer { peer.stop() }
        let plan = LoadPlan(threads: threads, durationSeconds: duration, messages: nil, window: mode == "async" ? window : 1,
                            size: size, mode: mode, rate: rate)
        print("bench nats: \(peer.version), JetStream file storage, \(threads) threads, \(size) B, mode \(mode), \(format(duration, 0)) s")
        let result = try await peer.run(plan) { print($0) }
        result.printSummary()
        if let json { writeFile(json, result.json + "\n") }
    }
}
