#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import IndexFile
import Remoting
import NIOCore
import NIOPosix
import Synchronization

/// The second peer: Redis Streams (Debian's `redis-server`), one `XADD` per message through the same load loop
/// as `bench producer`, with the append-only file on: `appendfsync everysec` beside ASYNC_FLUSH (a second's
/// writes may be lost, as with the broker's background flush) and `always` beside SYNC_FLUSH (Redis fsyncs
/// before it answers). Snapshots are off, so the AOF is the only durability. The stream is capped near
/// `streamLengthMax` entries (`MAXLEN ~`), so a long run's memory stays bounded; trimming is part of the cost.
final class RedisPeer {
    static let streamLengthMax = 100_000
    static let candidates = ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]
    static var installed: String? { candidates.first { access($0, X_OK) == 0 } }

    let server: PeerServer
    /// `everysec` or `always`.
    let appendfsync: String

    init(appendfsync: String) throws {
        guard ["everysec", "always"].contains(appendfsync) else { throw ValidationErrorText("appendfsync must be everysec or always") }
        self.appendfsync = appendfsync
        server = try PeerServer("redis", candidates: Self.candidates, package: "redis-server",
                                readyText: "Ready to accept connections") { server, directory, port in
            [server, "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes", "--appendfsync", appendfsync,
             "--save", "", "--daemonize", "no", "--protected-mode", "no", "--logfile", ""]
        }
    }

    /// `redis-server 7.0.15` (from its start-up log).
    var version: String {
        let text = readTextFile(server.log) ?? ""
        guard let at = text.firstRange(of: "version=") else { return "redis-server" }
        return "redis-server " + text[at.upperBound...].prefix { $0 != "," && $0 != " " }
    }

    /// `Redis Streams (AOF everysec)`: the mode's name in tables.
    var label: String { "Redis Streams (AOF \(appendfsync))" }

    func stop() { server.stop() }

    /// The same load as `bench producer` (plan, warm-up, 10 s timeout) as XADDs on one connection, pipelined
    /// (Redis answers in order). An entry ID answered is SEND_OK, an error answer RESPONSE_FAILED, a timeout
    /// or a lost connection SEND_FAILED. CPU: the redis-server process's.
    func run(_ plan: LoadPlan, everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        let (port, pid) = (server.port, server.pid)
        return try await PeerServer.withConnection({ group in
            try await RedisClient.connect(port: port, group: group, timeoutMillis: ProducerLoad.sendTimeoutMillis)
        }, close: { await $0.close() }) { client in
            try await Self.measure(plan, client: client, cpu: .processes([pid]), everySecond: everySecond)
        }
    }

    private static func measure(_ plan: LoadPlan, client: RedisClient, cpu: ServerCPUSource,
                                everySecond: @escaping @Sendable (String) -> Void) async throws -> ProducerResult {
        let body = (0..<plan.size).map { UInt8(97 + $0 % 26) }
        let warmUp = try await client.request(xadd(client.channel.allocator, payload: [UInt8](repeating: 98, count: plan.size)))
        guard case .bulk = warmUp else { throw ValidationErrorText("Redis refused the warm-up XADD: \(warmUp)") }
        return try await driveLoad(plan, cpu: cpu, everySecond: everySecond) { _, _ in
            do {
                let reply = try await client.request(xadd(client.channel.allocator, payload: body))
                if case .bulk = reply { return .sendOK }
                return .responseFailed
            } catch {
                return .sendFailed
            }
        }
    }

    /// `XADD bench MAXLEN ~ <max> * d <payload>` in RESP.
    static func xadd(_ allocator: ByteBufferAllocator, payload: [UInt8]) -> ByteBuffer {
        let words: [[UInt8]] = [Array("XADD".utf8), Array("bench".utf8), Array("MAXLEN".utf8), Array("~".utf8),
                                Array("\(streamLengthMax)".utf8), Array("*".utf8), Array("d".utf8)]
        var frame = allocator.buffer(capacity: payload.count + 96)
        frame.writeString("*\(words.count + 1)\r\n")
        for word in words + [payload] {
            frame.writeString("$\(word.count)\r\n")
            frame.writeBytes(word)
            frame.writeString("\r\n")
        }
        return frame
    }
}

/// `bench redis`: the Redis peer alone, same load shape as `bench producer`.
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "The same send load against a local Redis Streams (XADD, AOF on) for comparison.",
        discussion: """
            Same conditions as `bench producer`: one warm-up XADD before measuring, a 10 s request timeout, sync \
            (wait for each answer) or async (--window in flight per sender). --fsync everysec sits beside ASYNC_FLUSH, \
            always beside SYNC_FLUSH. An entry ID counts as SEND_OK, an error answer as RESPONSE_FAILED, a timeout \
            or lost connection as SEND_FAILED.
            """)
    @Option(name: .customShort("w"), help: "Sender threads") var threads = 64
    @Option(name: .customShort("s"), help: "Body size in bytes") var size = 1024
    @Option(help: "Seconds to run") var duration: Double = 20
    @Option(help: "sync or async") var mode = "sync"
    @Option(help: "Async mode: XADDs in flight per thread") var window = 16
    @Option(help: "appendfsync: everysec or always") var fsync = "everysec"
    @Option(help: "Open loop: messages per second on a fixed schedule") var rate: Double?
    @Option(help: "Write the result as JSON to this file") var json: String?

    func validate() throws {
        guard threads > 0, size > 0, window > 0, duration > 0 else { throw ValidationError("-w, -s, --window and --duration must be positive") }
        guard ["sync", "async"].contains(mode) else { throw ValidationError("--mode must be sync or async") }
        guard ["everysec", "always"].contains(fsync) else { throw ValidationError("--fsync must be everysec or always") }
        if let rate { guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be positive") } }
    }

    func run() async throws {
        lineBufferedOutput()
        let peer = try RedisPeer(appendfsync: fsync)
        defer { peer.stop() }
        let plan = LoadPlan(threads: threads, durationSeconds: duration, messages: nil, window: mode == "async" ? window : 1,
                            size: size, mode: mode, rate: rate)
        print("bench redis: \(peer.version), \(peer.label), \(threads) threads, \(size) B, mode \(mode), \(format(duration, 0)) s")
        let result = try await peer.run(plan) { print($0) }
        result.printSummary()
        if let json { writeFile(json, result.json + "\n") }
    }
}
