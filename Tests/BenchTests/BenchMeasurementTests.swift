#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import NIOCore
import NIOPosix
import Remoting
import Synchronization
import Testing

@testable import bench

/// How many sends meant for the loop ran elsewhere.
final class OffLoopSends: Sendable {
    let value = Atomic<Int>(0)
}

/// The measuring parts of `bench` on known inputs: the open-loop schedule and its behind-schedule accounting
/// against a deliberately slow target, the CPU readers, the RESP decoder, and the store's ceilings.
@Suite struct BenchMeasurementTests {
    /// Sends are spread over the senders in turn at the target rate: at 100 sends/s over 4 senders, sender 1's
    /// third send (index 2) is the 10th of the run (2 * 4 + 1 = 9 from 0), due 90 ms after the start.
    @Test func theScheduleSpreadsSendsOverTheSendersInTurn() {
        let schedule = OpenLoopSchedule(start: 1_000, sendsPerSecond: 100, senders: 4)
        #expect(schedule.due(sender: 0, index: 0) == 1_000)
        #expect(schedule.due(sender: 1, index: 2) == 1_000 + 90_000_000)
        #expect(schedule.due(sender: 3, index: 0) == 1_000 + 30_000_000)
        #expect(schedule.due(sender: 0, index: 1) == 1_000 + 40_000_000)
    }

    /// A target that needs 30 ms per send, asked for 100 sends/s by one sender: send k is due at 10k ms but can
    /// start only at about 30k ms, so it is about 20k ms behind, and its RT (counted from its due time) includes
    /// that wait. A closed loop would report 30 ms for every send; the open loop must report the backlog.
    @Test func aSlowTargetFallsBehindAndEverySendIsTimedFromItsDueTime() async throws {
        let plan = LoadPlan(threads: 1, durationSeconds: nil, messages: 10, size: 8, mode: "sync", rate: 100)
        let result = try await driveLoad(plan, everySecond: { _ in }) { _, _ in
            try? await Task.sleep(for: .milliseconds(30))
            return .sendOK
        }
        let open = try #require(result.openLoop)
        #expect(result.messages == 10 && open.behind.totalCount == 10)
        // The 10th send is due at 90 ms and starts after 9 sends of >= 30 ms: >= 180 ms behind.
        #expect(open.behindMaxMicros >= 180_000, "\(open.behindMaxMicros)")
        #expect(open.lateSends >= 8, "sends 2..10 start more than 1 ms late: \(open.lateSends)")
        #expect(result.maxMicros >= 180_000 + 30_000, "RT from the due time includes the backlog: \(result.maxMicros)")
        #expect(result.json.contains("\"target_rate\":100.0") && result.json.contains("\"late_sends\":"), "\(result.json)")
    }

    /// A fast target is held to the schedule: 20 sends at 200 sends/s take at least the 95 ms until the last is
    /// due, where a closed loop would be done in microseconds. (How late each went out depends on how busy the
    /// machine is, so it is not checked here.)
    @Test func aFastTargetIsHeldToTheSchedule() async throws {
        let plan = LoadPlan(threads: 2, durationSeconds: nil, messages: 20, size: 8, mode: "sync", rate: 200)
        let result = try await driveLoad(plan, everySecond: { _ in }) { _, _ in .sendOK }
        #expect(result.seconds >= 0.094, "\(result.seconds)")
        #expect(result.openLoop?.behind.totalCount == 20)
    }

    /// Senders on a client's event loop (`EventLoopTaskExecutor`) wait for their due times on the loop's one
    /// timer (`DueTimer`): 20 sends at 200 sends/s still take at least the 95 ms until the last is due, none went
    /// out more than the timer's slack before it was due (counted from before the run began, which is no later
    /// than the schedule's start), and every send ran on the loop.
    @Test func sendersOnTheEventLoopAreHeldToTheScheduleByOneTimer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(eventLoop: group.next())
        let plan = LoadPlan(threads: 2, durationSeconds: nil, messages: 20, size: 8, mode: "sync", rate: 200)
        let offLoop = OffLoopSends(), early = OffLoopSends()
        let before = monotonicNanos()
        let result = try await driveLoad(plan, executor: executor, everySecond: { _ in }) { sender, sequence in
            if !executor.eventLoop.inEventLoop { offLoop.value.wrappingAdd(1, ordering: .relaxed) }
            let dueAfterStart = UInt64((sequence - 1) * 2 + sender) * 5_000_000  // 200/s: one due every 5 ms
            if monotonicNanos() + DueTimer.defaultSlackNanos < before + dueAfterStart { early.value.wrappingAdd(1, ordering: .relaxed) }
            return .sendOK
        }
        #expect(result.seconds >= 0.094, "\(result.seconds)")
        #expect(result.openLoop?.behind.totalCount == 20)
        #expect(offLoop.value.load(ordering: .relaxed) == 0)
        #expect(early.value.load(ordering: .relaxed) == 0)
        try await group.shutdownGracefully()
    }

    /// A wider timer slack releases sends that early, together: at 200 sends/s over 2 senders with 20 ms of slack,
    /// the sends due in the first 20 ms go out at once (some more than 1 ms before they are due, none more than the
    /// slack before), and the run ends up to the slack before the last send is due (95 ms).
    @Test func aWiderTimerSlackReleasesSendsDueWithinItTogether() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(eventLoop: group.next())
        var plan = LoadPlan(threads: 2, durationSeconds: nil, messages: 20, size: 8, mode: "sync", rate: 200)
        let slack: UInt64 = 20_000_000
        plan.timerSlackNanos = slack
        let earlyByMoreThanSlack = OffLoopSends(), earlyByOverOneMilli = OffLoopSends()
        let before = monotonicNanos()
        let result = try await driveLoad(plan, executor: executor, everySecond: { _ in }) { sender, sequence in
            let due = before + UInt64((sequence - 1) * 2 + sender) * 5_000_000
            let now = monotonicNanos()
            if now + slack < due { earlyByMoreThanSlack.value.wrappingAdd(1, ordering: .relaxed) }
            if now + 1_000_000 < due { earlyByOverOneMilli.value.wrappingAdd(1, ordering: .relaxed) }
            return .sendOK
        }
        #expect(result.seconds >= 0.074, "\(result.seconds)")
        #expect(result.openLoop?.behind.totalCount == 20)
        #expect(earlyByMoreThanSlack.value.load(ordering: .relaxed) == 0)
        #expect(earlyByOverOneMilli.value.load(ordering: .relaxed) > 0)
        try await group.shutdownGracefully()
    }

    /// The hiccup meter records one lateness per wake-up while it runs and stops at `finish`.
    @Test func theHiccupMeterRecordsEveryWakeUpUntilFinished() async throws {
        let meter = HiccupMeter.start()
        let deadline = monotonicNanos() + 5_000_000_000
        while meter.wakeups.load(ordering: .relaxed) < 5 && monotonicNanos() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        let stats = meter.finish()
        let counted = meter.wakeups.load(ordering: .relaxed)
        #expect(counted >= 5 && stats.late.totalCount == UInt64(counted), "\(counted) \(stats.late.totalCount)")
        #expect(stats.lateMicros(99.9) <= stats.maxMicros && stats.count(over: stats.maxMicros) == 0)
        #expect(stats.jsonMembers.contains("\"hiccup_p999_us\":") && stats.summary.contains("wake-ups > 1 ms late"))
        #expect(meter.wakeups.load(ordering: .relaxed) == counted, "no wake-up after finish")
    }

    /// A windowed (async) sender keeps its window's loops on one sequence: 100 sends over 2 senders with 4 in
    /// flight each are all made and counted, and each sender's send numbers run 1, 2, 3 ... without a gap or a
    /// repeat, however the loops interleave.
    @Test func windowedSendersNumberTheirSendsOnce() async throws {
        let plan = LoadPlan(threads: 2, durationSeconds: nil, messages: 100, window: 4, size: 8, mode: "async")
        let seen = Mutex<[Int: [Int]]>([:])
        let result = try await driveLoad(plan, everySecond: { _ in }) { sender, sequence in
            seen.withLock { $0[sender, default: []].append(sequence) }
            await Task.yield()
            return .sendOK
        }
        #expect(result.messages == 100)
        let numbers = seen.withLock { $0 }
        #expect(numbers.values.map(\.count).reduce(0, +) == 100)
        for (sender, sequences) in numbers { #expect(sequences.sorted() == Array(1...sequences.count), "sender \(sender)") }
    }

    /// A closed-loop run has no open-loop figures; the client's CPU is measured and the server's is read from
    /// `/proc/PID/stat` (here this test process itself, busy in the send).
    @Test func cpuPerMessageIsMeasuredForTheServerAndTheClient() async throws {
        let plan = LoadPlan(threads: 1, durationSeconds: nil, messages: 200, size: 8, mode: "sync")
        let result = try await driveLoad(plan, cpu: .processes([getpid()]), everySecond: { _ in }) { _, _ in
            var x: UInt64 = 1
            for i in 0..<200_000 { x = x &* 6364136223846793005 &+ UInt64(i) }  // about 0.2 ms of work per send
            return x == 0 ? .sendFailed : .sendOK
        }
        #expect(result.openLoop == nil && !result.json.contains("target_rate"))
        let cpu = try #require(result.cpu)
        #expect(cpu.clientMicrosPerMessage > 0 && cpu.clientMicrosPerMessage.isFinite, "\(cpu.summary)")
        #expect((cpu.serverMicrosPerMessage ?? 0) > 0, "\(cpu.summary)")
        #expect(result.json.contains("\"broker_cpu_us_per_msg\":") && result.json.contains("\"client_cpu_us_per_msg\":"))
    }

    /// `/proc/PID/stat`'s command name may hold spaces and parentheses; utime and stime are counted after its
    /// last `)` and scaled from clock ticks.
    @Test func statLinesAreParsedAfterTheCommandName() {
        let line = "4242 (my (odd) broker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
        #expect(CPUTime.parseStat(line, ticksPerSecond: 100) == CPUTime(userMicros: 2_500_000, sysMicros: 750_000))
        #expect(CPUTime.parseStat("4242 (x) S 1", ticksPerSecond: 100) == nil)
        #expect(CPUTime(userMicros: 5, sysMicros: 3).since(CPUTime(userMicros: 2, sysMicros: 4)) == CPUTime(userMicros: 3, sysMicros: 0))
        #expect(CPUTime.ofProcess(getpid()) != nil)
    }

    /// XADD's answers: an entry ID (bulk), an error; a reply cut short waits for more; an oversized or unknown
    /// reply is refused before anything is read into memory.
    @Test func respRepliesAreDecodedAndBadOnesRefused() throws {
        var buffer = ByteBuffer(string: "$15\r\n1700000000000-0\r\n-ERR wrong\r\n:7\r\n$-1\r\n$5\r\nab")
        #expect(try RedisReplyDecoder.parse(&buffer) == .bulk(Array("1700000000000-0".utf8)))
        #expect(try RedisReplyDecoder.parse(&buffer) == .error("ERR wrong"))
        #expect(try RedisReplyDecoder.parse(&buffer) == .integer(7))
        #expect(try RedisReplyDecoder.parse(&buffer) == .bulk(nil))
        #expect(try RedisReplyDecoder.parse(&buffer) == nil && buffer.readableBytes == 6, "a cut bulk string is left for later")
        var huge = ByteBuffer(string: "$\(RedisReplyDecoder.bulkBytesMax + 1)\r\n")
        #expect(throws: ValidationErrorText.self) { try RedisReplyDecoder.parse(&huge) }
        var array = ByteBuffer(string: "*1\r\n")
        #expect(throws: ValidationErrorText.self) { try RedisReplyDecoder.parse(&array) }
        let frame = RedisPeer.xadd(ByteBufferAllocator(), payload: Array("hi".utf8))
        #expect(String(buffer: frame) == "*8\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$6\r\n100000\r\n$1\r\n*\r\n$1\r\nd\r\n$2\r\nhi\r\n")
    }

    /// Both ceilings run on a real file: the group commit writes P records per fdatasync (its batch latency is
    /// recorded), memcpy copies with P threads; both give a positive, finite rate and say what they are.
    @Test func theStoreBaselinesAreComputed() throws {
        let directory = makeTemporaryDirectory("bench-baseline-test")
        defer { removeTree(directory) }
        for preWritten in [false, true] {
            let sync = try #require(StoreBaseline.groupCommit(directory: directory, recordSize: 300, producers: 8, records: 400,
                                                              fileSize: 1 << 20, seconds: 5, preWritten: preWritten))
            #expect(sync.tps > 0 && sync.tps.isFinite && sync.histogram?.totalCount == 50, "400 records in batches of 8")
            #expect(sync.name.contains("8 records") && sync.micros(50) > 0)
            #expect(sync.name.contains(preWritten ? "pre-written file" : "fallocated file"))
        }
        let async = try #require(StoreBaseline.memcpy(directory: directory, recordSize: 300, producers: 3, records: 30_000,
                                                      fileSize: 1 << 20, seconds: 5))
        #expect(async.tps > 0 && async.tps.isFinite && async.name.contains("3 threads"))
    }
}
