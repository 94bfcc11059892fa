#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Testing
import TestSupport

struct Acknowledged {
    var offset: UInt64
    var size: Int
    var producer: Int32
    var sequence: Int64
    var crc: UInt32
}

/// SIGKILL at random moments while a child appends under SYNC_FLUSH: after every restart each
/// acknowledged record is readable and intact, every record in the log checks, and the log ends on a
/// record boundary. The io path (and the mmap write buffer) changes between rounds; the store carries over
/// from round to round.
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
            // mmap with its write buffer (the SYNC_FLUSH default), io_uring, mmap writing through the mapping.
            let io = ["mmap", "io_uring", "mmap"][round % 3]
            let writeBuffer = round % 3 == 2 ? "off" : "on"
            let (ready, lines) = try ChildProcess.runThenKill(
                [bench, "crash-child", "--dir", dir.path, "--io", io, "--write-buffer", writeBuffer, "--producers", "4",
                 "--size", String(Int.random(in: 64...2048, using: &random)),
                 "--file-size", String(128 * 1024), "--first-sequence", String(round * 1_000_000)],
                afterMillis: Int.random(in: 20...400, using: &random))
            #expect(ready, "round \(round): the child did not start (seed \(seed))")
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
