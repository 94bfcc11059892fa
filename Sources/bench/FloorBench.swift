#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Histogram
import Synchronization

/// `bench floor`: what this machine allows before any broker runs, measured the way the broker's own work needs
/// it: how late a timer wakes a sleeping thread, how long a wake-up round trip between two threads takes, and
/// what one durable round (pwrite + fdatasync) costs in time and CPU, alone and with rounds in parallel. The
/// other benches' figures sit on these floors.
struct FloorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "floor",
        abstract: "This machine's floors: timer wake-ups, thread wake-up round trips, a durable round's time and CPU.",
        discussion: """
            timer: one thread sleeps 1 ms (nanosleep) again and again; how late it wakes. An open-loop send is timed \
            from its due time, so the sender's timer lateness is part of its RT. wake-up round trip: two threads pass \
            1 KiB back and forth over a Unix socket (each pass wakes the other thread), as a request and its answer \
            wake a broker's and a client's event loop. durable rounds: T threads (1, 2, 4) each pwrite --batch \
            bytes into their own region of one pre-written file and fdatasync it, in a loop: rounds a second, each \
            round's time, and the threads' CPU per round, the kernel's own work for a durable round (no group commit \
            can flush for less). Each part runs --seconds.
            """)

    @Option(help: "Seconds each part runs") var seconds: Double = 2
    @Option(help: "Bytes each durable round writes") var batch: Int = 32 * 1024
    @Option(help: "Directory for the durable rounds' file (default: a fresh temporary one, removed afterwards)") var dir: String?
    @Flag(help: "Print one JSON object instead of text") var json = false

    static let roundThreads = [1, 2, 4]

    func validate() throws {
        guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard batch > 0, batch <= 64 << 20 else { throw ValidationError("--batch must be 1 byte to 64 MiB") }
    }

    func run() throws {
        let timer = Self.timerLateness(seconds: seconds)
        let trip = try Self.wakeRoundTrips(seconds: seconds)
        let root = dir ?? makeTemporaryDirectory("bench-floor")
        defer { if dir == nil { removeTree(root) } }
        var rounds: [DurableRounds] = []
        for threads in Self.roundThreads {
            guard let measured = DurableRounds.measure(directory: root, threads: threads, batchBytes: batch, seconds: seconds) else {
                throw ValidationError("the durable rounds could not write their file in \(root)")
            }
            rounds.append(measured)
        }
        json ? printJSON(timer: timer, trip: trip, rounds: rounds) : printText(timer: timer, trip: trip, rounds: rounds)
    }

    /// How late a thread sleeping 1 ms wakes, nanoseconds.
    static func timerLateness(seconds: Double) -> Histogram<UInt64> {
        var late = StoreBaseline.makeHistogram()
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        var nap = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        while monotonicNanos() < deadline {
            let before = monotonicNanos()
            nanosleep(&nap, nil)
            let slept = monotonicNanos() - before
            _ = late.record(slept > 1_000_000 ? slept - 1_000_000 : 0)
        }
        return late
    }

    /// Round trips of 1 KiB between this thread and an echo thread over a Unix socket pair, nanoseconds.
    static func wakeRoundTrips(seconds: Double) throws -> Histogram<UInt64> {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else {
            throw ValidationError("socketpair failed: errno \(errno)")
        }
        defer { close(pair[0]) }
        let echoFD = pair[1]
        let echo = StoreThread(name: "floor-echo") {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = buffer.withUnsafeMutableBytes { read(echoFD, $0.baseAddress, $0.count) }
                guard got > 0, writeAll(echoFD, buffer, count: got) else { break }
            }
            close(echoFD)
        }
        var trips = StoreBaseline.makeHistogram()
        var message = [UInt8](repeating: 7, count: 1024)
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < deadline {
            let began = monotonicNanos()
            guard writeAll(pair[0], message, count: message.count), readAll(pair[0], &message) else { break }
            _ = trips.record(monotonicNanos() - began)
        }
        shutdown(pair[0], Int32(SHUT_RDWR))
        echo.join()
        return trips
    }

    private func printText(timer: Histogram<UInt64>, trip: Histogram<UInt64>, rounds: [DurableRounds]) {
        func micros(_ histogram: Histogram<UInt64>) -> String {
            "p50 \(Self.micros(histogram, 50)) p99 \(Self.micros(histogram, 99)) p99.9 \(Self.micros(histogram, 99.9)) "
                + "max \(fmt(Double(histogram.max) / 1000, 1)) (\(histogram.totalCount) samples)"
        }
        print("bench floor: \(fmt(seconds, 1)) s per part")
        print("  timer: a thread sleeping 1 ms wakes late by (us): \(micros(timer))")
        print("  wake-up round trip: 1 KiB to another thread and back over a Unix socket (us): \(micros(trip))")
        for round in rounds {
            print("  durable rounds, \(round.threads) thread\(round.threads == 1 ? "" : "s") (pwrite of \(batch) B + fdatasync each, "
                  + "one file): \(fmt(round.roundsPerSecond, 0)) rounds/s; per round (us) p50 \(Self.micros(round.latency, 50)) "
                  + "p99 \(Self.micros(round.latency, 99)); CPU \(fmt(round.cpuMicrosPerRound, 1)) us per round")
        }
    }

    private func printJSON(timer: Histogram<UInt64>, trip: Histogram<UInt64>, rounds: [DurableRounds]) {
        func members(_ prefix: String, _ histogram: Histogram<UInt64>) -> String {
            "\"\(prefix)_p50_us\":\(Self.micros(histogram, 50)),\"\(prefix)_p99_us\":\(Self.micros(histogram, 99)),"
                + "\"\(prefix)_p999_us\":\(Self.micros(histogram, 99.9)),\"\(prefix)_max_us\":\(fmt(Double(histogram.max) / 1000, 1))"
        }
        let roundMembers = rounds.map { round in
            "\"rounds_\(round.threads)_per_s\":\(fmt(round.roundsPerSecond)),\"rounds_\(round.threads)_p50_us\":\(Self.micros(round.latency, 50)),"
                + "\"rounds_\(round.threads)_p99_us\":\(Self.micros(round.latency, 99)),"
                + "\"rounds_\(round.threads)_cpu_us\":\(fmt(round.cpuMicrosPerRound))"
        }
        print("{\"seconds\":\(fmt(seconds)),\"batch_bytes\":\(batch),\(members("timer_late", timer)),\(members("wake_rtt", trip)),"
              + roundMembers.joined(separator: ",") + "}")
    }

    static func micros(_ histogram: Histogram<UInt64>, _ percentile: Double) -> String {
        histogram.totalCount == 0 ? "0" : fmt(Double(histogram.valueAtPercentile(percentile)) / 1000, 1)
    }
}

/// Writes `count` bytes of `bytes` whole; false on an error or a closed peer.
private func writeAll(_ fd: Int32, _ bytes: [UInt8], count: Int) -> Bool {
    var done = 0
    while done < count {
        let wrote = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, count - done) }
        guard wrote > 0 else { return false }
        done += wrote
    }
    return true
}

/// Fills `buffer` whole from `fd`; false on an error or end of stream.
private func readAll(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
    var done = 0
    let count = buffer.count
    while done < count {
        let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
        guard got > 0 else { return false }
        done += got
    }
    return true
}
