#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import Histogram
import IndexFile
import Synchronization

/// `bench store`: N producer threads append M messages to a fresh commit log and report msgs/s, MB/s
/// and append-to-durable latency, beside a baseline measured in the same run on the same disk.
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Append throughput and latency of the commit log, with a baseline from the same run.",
        discussion: """
            Latency is append-to-durable: under --flush sync until the group commit's fdatasync covers the \
            record; under --flush async until the append returns (the background flusher makes it durable \
            later). Baselines are the ceilings of each mode with the same producer count P: sync = the ideal group \
            commit, one thread writing P records per pwrite then one fdatasync, in a loop, into the kind of file the log \
            writes (pre-written under sync unless --pre-write off; the other kind is printed too); \
            async = P threads memcpy-ing the same records into a pre-faulted mapping. ratio = ours / baseline. \
            The P producers are P OS threads each blocking on its put (default), or with --drivers D, D threads that \
            issue each producer's next put from its durable callback, as the broker's event loops answer and take the \
            next send; the store and the baseline are the same either way.
            """)

    @Option(help: "mmap or io_uring") var io: String = "mmap"
    @Option(help: "async or sync (flushDiskType)") var flush: String = "async"
    @Option(help: "How the mmap path flushes: msync or fdatasync") var flushMethod: String = "msync"
    @Option(help: "Body size in bytes") var size: Int = 1024
    @Option(help: "Producers (puts in flight)") var producers: Int = 4
    @Option(help: "0: one OS thread per producer, blocking on each put; D > 0: D threads drive the producers, each one's next put issued from its durable callback, as the broker does") var drivers: Int = 0
    @Option(help: "Messages in all") var messages: Int = 200_000
    @Option(help: "Store directory (default: a fresh temporary one, removed afterwards)") var dir: String?
    @Option(help: "mappedFileSizeCommitLog in bytes") var fileSize: Int = 1 << 30
    @Option(help: "Seconds the baseline runs at most") var baselineSeconds: Double = 3
    @Option(help: "store: through MessageStore (queues, index, dispatch); commitlog: the bare log") var layer: String = "store"
    @Option(help: "mmap path: bytes faulted in ahead of the write position (0: off)") var prefaultAhead: Int = 32 << 20
    @Flag(help: "Touch every page of a new file before use (warmMapedFileEnable)") var warm = false
    @Option(help: "Write new log files' zeros out before use: auto (under sync or --warm), on, off") var preWrite = "auto"
    @Option(help: "mmap under sync: appends through the write buffer (transientStorePoolEnable): auto (on), on, off") var writeBuffer = "auto"
    @Option(help: "under sync: group-commit lanes (1 or 2; groupCommitLanes): mmap threads, io_uring rounds in flight") var lanes = 1
    @Option(help: "under sync: microseconds a group-commit round may wait for the puts the last one answered (groupCommitLingerMicros; default 0, off)") var linger: Int?
    @Flag(help: "Print one JSON object instead of text") var json = false

    func validate() throws {
        guard size > 0, producers > 0, messages >= producers, drivers >= 0 else {
            throw ValidationError("--size, --producers must be positive and --messages at least --producers")
        }
        guard layer == "store" || layer == "commitlog" else { throw ValidationError("--layer must be store or commitlog") }
        guard ["auto", "on", "off"].contains(preWrite) else { throw ValidationError("--pre-write must be auto, on or off") }
        guard ["auto", "on", "off"].contains(writeBuffer) else { throw ValidationError("--write-buffer must be auto, on or off") }
        guard lanes == 1 || lanes == 2 else { throw ValidationError("--lanes must be 1 or 2") }
    }

    func run() throws {
        let ioPath = try parseIOPath(io)
        let flushType = try parseFlush(flush)
        let root = dir ?? makeTemporaryDirectory("bench-store")
        defer { if dir == nil { removeTree(root) } }
        var settings = CommitLogSettings(storePathRootDir: root)
        settings.ioPath = ioPath
        settings.flushDiskType = flushType
        settings.mappedFileSizeCommitLog = fileSize
        settings.warmMapedFileEnable = warm
        settings.preWriteNewFiles = preWrite == "auto" ? nil : preWrite == "on"
        settings.preWriteFirstFile = true  // measured on a pre-written file, as every file after a broker's first is
        settings.prefaultAheadBytes = prefaultAhead
        settings.writeBuffer = writeBuffer == "auto" ? nil : writeBuffer == "on"
        settings.groupCommitLanes = lanes
        if let linger { settings.groupCommitLingerMicros = linger }
        guard let method = FlushMethod(rawValue: flushMethod) else {
            throw ValidationError("--flush-method must be msync or fdatasync, not \(flushMethod)")
        }
        settings.flushMethod = method
        settings.maxMessageSize = max(size, 4096)
        var arena = 32 << 20
        while arena < 2 * settings.recordSizeMax { arena <<= 1 }
        settings.ioUringArenaSizeBytes = arena

        // The baseline runs first, and both start with no dirty pages of the other's in the page cache.
        let recordSize = recordSizeFor(settings)
        sync()
        // Sync: the ideal group commit on the kind of file the log writes (pre-written or only fallocated), which
        // the ratio is against, and on the other kind for comparison.
        func groupCommit(preWritten: Bool) -> StoreBaseline? {
            StoreBaseline.groupCommit(directory: root, recordSize: recordSize, producers: producers, records: messages,
                                      fileSize: fileSize, seconds: baselineSeconds, preWritten: preWritten)
        }
        let baseline = flushType == .syncFlush
            ? groupCommit(preWritten: settings.preWritesNewFiles)
            : StoreBaseline.memcpy(directory: root, recordSize: recordSize, producers: producers, records: messages,
                                   fileSize: fileSize, seconds: baselineSeconds)
        guard let baseline else { throw ValidationError("the baseline could not write its file in \(root)") }
        let other = flushType == .syncFlush ? groupCommit(preWritten: !settings.preWritesNewFiles) : nil
        sync()
        let result = try measure(settings)
        report(result, baseline: baseline, other: other, ioPath: ioPath, flushType: flushType)
    }

    struct Measurement {
        var elapsedSeconds: Double
        var recordSize: Int
        var histogram: Histogram<UInt64>
        var failed: Int
        var flushes: Int
        var dispatchLag: Histogram<UInt64>?
        var readTPS: Double?
        /// The producer (or driver) threads' own CPU time (microseconds) and page faults, summed (getrusage per thread).
        var producerCPUMicros: Int = 0
        var producerFaults: Int = 0
        /// Under SYNC_FLUSH: the flush threads' CPU time while the producers ran (`ThreadCPU.flushThreadPrefixes`).
        var flushCPUNanos: UInt64? = nil

        /// The flush threads' CPU per flush, microseconds.
        var flushCPUMicrosPerFlush: Double? {
            guard let flushCPUNanos, flushes > 0 else { return nil }
            return Double(flushCPUNanos) / 1000 / Double(flushes)
        }
    }

    /// This thread's CPU time (microseconds) and page faults (minor + major) so far.
    static func threadUsage() -> (cpuMicros: Int, faults: Int) {
        var usage = rusage()
        getrusage(type(of: RUSAGE_SELF.rawValue).init(1), &usage)  // RUSAGE_THREAD (a GNU name Swift does not import)
        func micros(_ time: timeval) -> Int { time.tv_sec * 1_000_000 + time.tv_usec }
        return (micros(usage.ru_utime) + micros(usage.ru_stime), usage.ru_minflt + usage.ru_majflt)
    }

    static let topic = Array("BenchmarkTest".utf8)
    static let properties = Array("TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}".utf8)

    private func recordSizeFor(_ settings: CommitLogSettings) -> Int {
        let body = [UInt8](repeating: 0, count: size)
        return StoreBench.topic.withUnsafeBytes { t in body.withUnsafeBytes { b in StoreBench.properties.withUnsafeBytes { p in
            MessageRecord.size(of: MessageView(topic: t, body: b, properties: p), storeHost: settings.storeHost)
        } } }
    }

    private func measure(_ settings: CommitLogSettings) throws -> Measurement {
        // Through the MessageStore (queue offsets, dispatch into queues and index) or the bare log.
        var storeConfig = MessageStoreConfig(storePathRootDir: settings.storePathRootDir)
        storeConfig.commitLog = settings
        let store = layer == "store" ? try MessageStore(config: storeConfig) : nil
        let log = try store?.commitLog ?? CommitLog(settings: settings)
        defer { store?.close() ?? log.close() }
        let gates = (0..<producers).map { _ in Gate() }
        let drivers = min(self.drivers, self.producers)
        let queues = (0..<drivers).map { _ in DriverQueue(capacity: self.producers) }
        if drivers > 0 {
            log.onDurable { token, _ in queues[Int(token) % drivers].stage(Int(token)) }
            log.onDurableBatchEnd { for queue in queues { queue.publish() } }
        } else {
            log.onDurable { token, _ in gates[Int(token)].signal() }
        }
        var bodyBytes = [UInt8](repeating: 0, count: size)
        bodyBytes.withUnsafeMutableBytes { fillBody($0, producer: 0, sequence: 0) }
        let body = bodyBytes
        let recordSize = recordSizeFor(settings)
        let histograms = Mutex([Histogram<UInt64>]())
        let failures = Atomic<Int>(0)
        let producerCPU = Atomic<Int>(0), producerFaults = Atomic<Int>(0)
        let producing = Atomic<Bool>(true)
        let lag = Mutex<Histogram<UInt64>?>(nil)
        let lagSampler = store.map { store in
            StoreThread(name: "lag-sampler") {
                let sampled = Self.sampleDispatchLag(store, recordSize: recordSize, while: producing)
                lag.withLock { $0 = sampled }
            }
        }
        let sync = settings.flushDiskType == .syncFlush
        let messages = messages, producers = producers
        let start = monotonicNanos()
        let counts = (0..<producers).map { messages / producers + ($0 < messages % producers ? 1 : 0) }
        let flushersBefore = sync ? ThreadCPU.sample(prefixes: ThreadCPU.flushThreadPrefixes) : nil
        let flushesBefore = log.flushCount
        let threads = (0..<(drivers > 0 ? drivers : producers)).map { thread in
            StoreThread(name: drivers > 0 ? "driver-\(thread)" : "producer-\(thread)") {
                let usageBefore = Self.threadUsage()
                defer {
                    let usage = Self.threadUsage()
                    producerCPU.wrappingAdd(usage.cpuMicros - usageBefore.cpuMicros, ordering: .relaxed)
                    producerFaults.wrappingAdd(usage.faults - usageBefore.faults, ordering: .relaxed)
                }
                let (histogram, failed) = drivers > 0
                    ? Self.drive(Array(stride(from: thread, to: producers, by: drivers)), counts: counts, queue: queues[thread],
                                 store: store, log: log, sync: sync, body: body)
                    : Self.produce(thread, count: counts[thread], store: store, log: log, sync: sync, gate: gates[thread], body: body)
                histograms.withLock { $0.append(histogram) }
                failures.wrappingAdd(failed, ordering: .relaxed)
            }
        }
        for thread in threads { thread.join() }
        let elapsed = Double(monotonicNanos() - start) / 1e9
        let flushCPU = flushersBefore.map { ThreadCPU.sample(prefixes: ThreadCPU.flushThreadPrefixes).since($0) }
        let flushes = log.flushCount - flushesBefore
        producing.store(false, ordering: .relaxed)
        lagSampler?.join()
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        histograms.withLock { all in for histogram in all { merged.add(histogram) } }
        return Measurement(elapsedSeconds: elapsed, recordSize: recordSize, histogram: merged, failed: failures.load(ordering: .relaxed),
                           flushes: flushes, dispatchLag: lag.withLock { $0 }, readTPS: store.map { measureReads($0) },
                           producerCPUMicros: producerCPU.load(ordering: .relaxed), producerFaults: producerFaults.load(ordering: .relaxed),
                           flushCPUNanos: flushCPU)
    }

    /// One put, through the store or into the bare log (under async, an append that waits for nothing). True
    /// when its answer waits for durability (the log's `onDurable` then calls back with `token`).
    @inline(__always)
    static func putOnce(_ view: MessageView, token: UInt64, store: MessageStore?, log: CommitLog, sync: Bool) throws -> Bool {
        if let store { return try store.put(view, token: token).durabilityPending }
        if sync { return try log.put(view, token: token).durabilityPending }
        _ = try log.append(view)
        return false
    }

    /// One producer thread's `count` puts, each timed from put to durable (nanoseconds). Returns the RT
    /// histogram and how many puts failed.
    private static func produce(_ producer: Int, count: Int, store: MessageStore?, log: CommitLog, sync: Bool, gate: Gate,
                                body: [UInt8]) -> (Histogram<UInt64>, Int) {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var failed = 0
        topic.withUnsafeBytes { t in body.withUnsafeBytes { b in properties.withUnsafeBytes { p in
            var view = MessageView(topic: t, body: b, properties: p, queueID: Int32(producer))
            // One clock read per put: a put starts when the one before it ended (the loop between them
            // sets two fields), so its latency is the time since then.
            var began = monotonicNanos()
            for sequence in 0..<count {
                view.queueOffset = Int64(sequence)
                view.queueID = Int32((producer + sequence) % StoreBench.queues)
                do {
                    if try putOnce(view, token: UInt64(producer), store: store, log: log, sync: sync) { gate.wait() }
                    let ended = monotonicNanos()
                    _ = histogram.record(ended - began)
                    began = ended
                } catch {
                    failed += 1
                    began = monotonicNanos()
                }
            }
        } } }
        return (histogram, failed)
    }

    /// How far dispatch trails the log (in records), sampled every millisecond while `producing`.
    private static func sampleDispatchLag(_ store: MessageStore, recordSize: Int, while producing: borrowing Atomic<Bool>) -> Histogram<UInt64> {
        var lag = Histogram<UInt64>(highestTrackableValue: 1 << 40, numberOfSignificantValueDigits: .three)
        while producing.load(ordering: .relaxed) {
            _ = lag.record(store.dispatchBehindBytes / UInt64(recordSize))
            usleep(1000)
        }
        return lag
    }

    static let queues = 8

    /// Waits for dispatch to finish, then reads every queue back with 32-message gets (one thread per
    /// producer, the queues shared among them): messages read per second.
    private func measureReads(_ store: MessageStore) -> Double {
        let deadline = monotonicNanos() + 120_000_000_000
        while store.dispatchBehindBytes > 0 && monotonicNanos() < deadline { usleep(1000) }
        let readers = min(producers, StoreBench.queues)
        let total = Atomic<Int>(0)
        let start = monotonicNanos()
        let threads = (0..<readers).map { reader in
            StoreThread(name: "reader-\(reader)") {
                for queue in stride(from: reader, to: StoreBench.queues, by: readers) {
                    var offset: Int64 = 0
                    while true {
                        let result = store.get(topic: "BenchmarkTest", queueID: Int32(queue), offset: offset, maxMsgNums: 32)
                        guard result.status == .found else { break }
                        total.wrappingAdd(result.records.count, ordering: .relaxed)
                        offset = result.nextBeginOffset
                    }
                }
            }
        }
        for thread in threads { thread.join() }
        return Double(total.load(ordering: .relaxed)) / (Double(monotonicNanos() - start) / 1e9)
    }

    private func report(_ m: Measurement, baseline: StoreBaseline, other: StoreBaseline?, ioPath: IOPath, flushType: FlushDiskType) {
        let done = Double(m.histogram.totalCount)
        let tps = done / m.elapsedSeconds
        let mbps = tps * Double(m.recordSize) / 1_048_576
        func micros(_ percentile: Double) -> Double { Double(m.histogram.valueAtPercentile(percentile)) / 1000 }
        let maxMicros = Double(m.histogram.max) / 1000
        let ratio = baseline.tps > 0 ? tps / baseline.tps : 0
        let cpuPerMessage = done > 0 ? Double(m.producerCPUMicros) / done : 0
        let faultsPerThousand = done > 0 ? Double(m.producerFaults) * 1000 / done : 0
        if json {
            print("""
                {"io":"\(ioPath.rawValue)","flush":"\(flushType.rawValue)","size":\(size),"record_size":\(m.recordSize),\
                "producers":\(producers),"drivers":\(min(drivers, producers)),"messages":\(Int(done)),"failed":\(m.failed),"tps":\(fmt(tps)),"mbps":\(fmt(mbps)),\
                "p50_us":\(fmt(micros(50))),"p99_us":\(fmt(micros(99))),"p999_us":\(fmt(micros(99.9))),"max_us":\(fmt(maxMicros)),\
                "flushes":\(m.flushes),"flush_cpu_us_per_flush":\(m.flushCPUMicrosPerFlush.map { fmt($0) } ?? "null"),"layer":"\(layer)","producer_cpu_us_per_msg":\(fmt(cpuPerMessage, 3)),\
                "producer_faults_per_1000_msgs":\(fmt(faultsPerThousand)),\
                "dispatch_lag_p99_msgs":\(m.dispatchLag.map { String($0.valueAtPercentile(99)) } ?? "null"),\
                "dispatch_lag_max_msgs":\(m.dispatchLag.map { String($0.max) } ?? "null"),\
                "read_tps":\(m.readTPS.map { fmt($0) } ?? "null"),"baseline_tps":\(fmt(baseline.tps)),"ratio":\(fmt(ratio, 4)),\
                "baseline":"\(baseline.name)","baseline_p50_us":\(fmt(baseline.micros(50))),"baseline_p99_us":\(fmt(baseline.micros(99))),\
                "baseline_cpu_us_per_batch":\(baseline.cpuMicrosPerBatch.map { fmt($0) } ?? "null"),\
                "other_baseline":\(other.map { "\"\($0.name)\"" } ?? "null"),"other_baseline_tps":\(other.map { fmt($0.tps) } ?? "null")}
                """)
            return
        }
        let driving = drivers > 0 ? "producers=\(producers) driven by \(min(drivers, producers)) threads from durable callbacks"
            : "producers=\(producers) (one blocking thread each)"
        print("bench store (\(layer)): io=\(ioPath.rawValue) flush=\(flushType.rawValue) body=\(size) B (record \(m.recordSize) B) \(driving) messages=\(Int(done)) failed=\(m.failed)")
        print("  throughput: \(fmt(tps, 0)) msgs/s, \(fmt(mbps, 1)) MB/s in \(fmt(m.elapsedSeconds, 2)) s")
        print("  append-to-durable latency (us): p50 \(fmt(micros(50))) p99 \(fmt(micros(99))) p99.9 \(fmt(micros(99.9))) max \(fmt(maxMicros))")
        print("  \(drivers > 0 ? "driver" : "producer") threads: CPU \(fmt(cpuPerMessage, 3)) us per message, \(fmt(faultsPerThousand)) page faults per 1000 messages")
        if let lag = m.dispatchLag, let readTPS = m.readTPS {
            print("  dispatch lag (messages): p50 \(lag.valueAtPercentile(50)) p99 \(lag.valueAtPercentile(99)) max \(lag.max); read (get of 32): \(fmt(readTPS, 0)) msgs/s")
        }
        if flushType == .syncFlush && m.flushes > 0 {
            let flushCPU = m.flushCPUMicrosPerFlush.map { perFlush in
                "; flush threads' CPU \(fmt(perFlush, 1)) us per flush (\(fmt(perFlush * Double(m.flushes) / max(done, 1), 2)) us per message)"
            } ?? ""
            print("  group commit: \(m.flushes) flushes, \(fmt(done / Double(m.flushes), 1)) puts per flush\(flushCPU)")
        }
        let batchLatency = baseline.histogram == nil ? ""
            : "; per batch (us) p50 \(fmt(baseline.micros(50))) p99 \(fmt(baseline.micros(99)))"
                + (baseline.cpuMicrosPerBatch.map { "; CPU \(fmt($0, 1)) us per batch" } ?? "")
        print("  baseline (\(baseline.name)): \(fmt(baseline.tps, 0)) msgs/s\(batchLatency)")
        print("  ratio (ours / baseline): \(fmt(ratio, 3))x  (\(fmt(tps, 0)) / \(fmt(baseline.tps, 0)) msgs/s)")
        if let other, other.tps > 0 {
            print("  for comparison (\(other.name)): \(fmt(other.tps, 0)) msgs/s; ours / it: \(fmt(tps / other.tps, 3))x")
        }
    }
}

func fmt(_ value: Double, _ digits: Int = 2) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if digits == 0 { return String(Int(rounded)) }
    return String(rounded)
}
