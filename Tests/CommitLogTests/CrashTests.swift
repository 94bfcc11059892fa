#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Testing

/// A child process started with a pipe on its stdout.
final class ChildProcess {
    let pid: pid_t
    private let output: Int32
    private var buffer: [UInt8] = []
    private var reaped = false

    init(_ arguments: [String]) throws {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw StoreError(.io, "pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, arguments[0], &actions, nil, &argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            throw StoreError(.io, "cannot start \(arguments[0]): errno \(rc)")
        }
        pid = child
        output = pipeFDs[0]
    }

    deinit {
        killHard()
        close(output)
    }

    /// Complete lines read within `timeoutMillis` (none when the child is quiet or gone).
    func readLines(timeoutMillis: Int32) -> [String]? {
        var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMillis) > 0 else { return [] }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
        if n <= 0 { return nil }  // end of stream
        buffer += chunk[0..<n]
        var lines: [String] = []
        while let newline = buffer.firstIndex(of: 10) {
            lines.append(String(decoding: buffer[..<newline], as: UTF8.self))
            buffer.removeSubrange(...newline)
        }
        return lines
    }

    /// SIGKILL, then wait until the process is gone (its store lock is released only then).
    func killHard() {
        guard !reaped else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        reaped = true
    }

    /// Everything the child wrote before it died.
    func drain() -> [String] {
        var lines: [String] = []
        let deadline = monotonicNanos() + 5_000_000_000
        while monotonicNanos() < deadline, let more = readLines(timeoutMillis: 200) {
            lines += more
            if more.isEmpty { break }
        }
        return lines
    }
}

/// The directory holding this test binary, where SwiftPM also puts the package's executables.
func builtExecutable(_ name: String) -> String? {
    var path = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &path, path.count - 1)
    guard n > 0 else { return nil }
    var executable = String(decoding: path[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !executable.hasSuffix("/") && !executable.isEmpty { executable.removeLast() }
    let candidate = executable + name
    return access(candidate, X_OK) == 0 ? candidate : nil
}

struct Acknowledged {
    var offset: UInt64
    var size: Int
    var producer: Int32
    var sequence: Int64
    var crc: UInt32
}

/// SIGKILL at random moments while a child appends under SYNC_FLUSH: after every restart each
/// acknowledged record is readable and intact, every record in the log checks, and the log ends on a
/// record boundary. The io path alternates between rounds; the store carries over from round to round.
@Suite(.serialized) struct CrashTests {
    @Test(arguments: [UInt64(0x5EED)])
    func acknowledgedRecordsSurviveSigkill(seed: UInt64) throws {
        guard let bench = builtExecutable("bench") else {
            Issue.record("the bench executable is not built next to the tests; run `swift build` first")
            return
        }
        var random = SeededGenerator(seed: seed)
        let dir = TemporaryDirectory("crash-test")
        var acknowledged: [Acknowledged] = []
        let rounds = 20
        for round in 0..<rounds {
            let io = round % 2 == 0 ? "mmap" : "io_uring"
            let child = try ChildProcess([bench, "crash-child", "--dir", dir.path, "--io", io, "--producers", "4",
                                          "--size", String(Int.random(in: 64...2048, using: &random)),
                                          "--file-size", String(128 * 1024), "--first-sequence", String(round * 1_000_000)])
            var lines: [String] = []
            let readyDeadline = monotonicNanos() + 20_000_000_000
            while !lines.contains(where: { $0.hasPrefix("READY") }) && monotonicNanos() < readyDeadline {
                guard let more = child.readLines(timeoutMillis: 100) else { break }
                lines += more
            }
            #expect(lines.contains { $0.hasPrefix("READY") }, "round \(round): the child did not start (seed \(seed))")
            let killAt = monotonicNanos() + UInt64(Int.random(in: 20...400, using: &random)) * 1_000_000
            while monotonicNanos() < killAt {
                guard let more = child.readLines(timeoutMillis: 10) else { break }
                lines += more
            }
            child.killHard()
            lines += child.drain()
            let acks = lines.compactMap(parseAck)
            acknowledged += acks
            try verify(dir.path, acknowledged, round: round, seed: seed)
        }
        #expect(acknowledged.count > rounds * 10, "only \(acknowledged.count) puts were acknowledged in \(rounds) rounds")
    }

    func parseAck(_ line: String) -> Acknowledged? {
        let parts = line.split(separator: " ")
        guard parts.count == 6, parts[0] == "ACK", let offset = UInt64(parts[1]), let size = Int(parts[2]),
              let producer = Int32(parts[3]), let sequence = Int64(parts[4]), let crc = UInt32(parts[5]) else { return nil }
        return Acknowledged(offset: offset, size: size, producer: producer, sequence: sequence, crc: crc)
    }

    func verify(_ root: String, _ acknowledged: [Acknowledged], round: Int, seed: UInt64) throws {
        var settings = testSettings(root, fileSize: 128 * 1024)
        settings.maxMessageSize = 4096
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        #expect(log.recoveryReport.abnormal, "round \(round): the kill left the abort marker")
        for ack in acknowledged {
            guard case .record(let record) = try log.readRecord(at: ack.offset) else {
                Issue.record("round \(round) (seed \(seed)): acknowledged record at \(ack.offset) is gone; log ends at \(log.wroteOffset)")
                return
            }
            #expect(record.header.totalSize == ack.size)
            #expect(record.header.queueID == ack.producer)
            #expect(record.header.queueOffset == ack.sequence)
            #expect(record.header.bodyCRC == ack.crc)
        }
        // Every record checks, and the last one ends exactly where the log ends.
        let end = try log.forEachRecord(from: log.minOffset) { _ in true }
        #expect(end == log.wroteOffset, "round \(round): records end at \(end), the log at \(log.wroteOffset)")
        #expect(log.recoveryReport.endOffset == log.wroteOffset)
    }
}
