import Benchmark
import CommitLog
import IndexFile
#if canImport(Glibc)
import Glibc
#endif

/// Encode and append with malloc counts: the hot path allocates nothing per message.
/// Names read Module.operation.size.variant. Malloc counts are gated at 0 (stored thresholds); times are
/// reported, not gated.
let benchmarks: @Sendable () -> Void = {
    storeBenchmarks()
    let zeroMallocs: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(absolute: [.p90: 0]),
    ]
    remotingBenchmarks(zeroMallocs)
    clientBenchmarks()

    for size in [128, 1024] {
        Benchmark("CommitLog.encode.\(size)B", configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo, thresholds: zeroMallocs)
        ) { benchmark in
            let topic = Array("BenchmarkTest".utf8)
            let body = [UInt8](repeating: 97, count: size)
            let properties = Array("TAGS\u{1}TagA\u{2}".utf8)
            let target = UnsafeMutableRawPointer.allocate(byteCount: size + 4096, alignment: 8)
            defer { target.deallocate() }
            topic.withUnsafeBytes { t in body.withUnsafeBytes { b in properties.withUnsafeBytes { p in
                let view = MessageView(topic: t, body: b, properties: p)
                let recordSize = MessageRecord.size(of: view, storeHost: .loopback)
                benchmark.startMeasurement()
                for i in benchmark.scaledIterations {
                    MessageRecord.encode(view, size: recordSize, bodyCRC: rocketCRC32(view.body), storeHost: .loopback,
                                         physicalOffset: Int64(i), storeTimestamp: 1, into: target)
                    blackHole(target.load(as: UInt8.self))
                }
                benchmark.stopMeasurement()
            } } }
        }

        for io in IOPath.allCases {
            Benchmark("CommitLog.append.\(size)B.\(io.rawValue)", configuration: .init(
                metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo, thresholds: zeroMallocs)
            ) { benchmark in
                var template = Array("/tmp/commitlog-benchmark-XXXXXX".utf8CString)
                let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
                defer { _ = system("rm -rf '\(root)'") }
                var settings = CommitLogSettings(storePathRootDir: root)
                settings.ioPath = io
                settings.mappedFileSizeCommitLog = 1 << 30
                let log = try CommitLog(settings: settings)
                defer { log.close() }
                let topic = Array("BenchmarkTest".utf8)
                let body = [UInt8](repeating: 97, count: size)
                // A first append creates the first file outside the measurement.
                try topic.withUnsafeBytes { t in try body.withUnsafeBytes { b in
                    let view = MessageView(topic: t, body: b)
                    _ = try log.append(view)
                    benchmark.startMeasurement()
                    for _ in benchmark.scaledIterations { blackHole(try log.append(view)) }
                    benchmark.stopMeasurement()
                } }
            }
        }
    }
}

/// MessageStore.put: queue offset assignment under the append lock plus the append, 0 mallocs once the
/// queue exists.
let storeBenchmarks: @Sendable () -> Void = {
    Benchmark("MessageStore.put.1024B.mmap", configuration: .init(
        metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])])
    ) { benchmark in
        var template = Array("/tmp/store-benchmark-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { _ = system("rm -rf '\(root)'") }
        var config = MessageStoreConfig(storePathRootDir: root)
        config.commitLog.mappedFileSizeCommitLog = 1 << 30
        let store = try MessageStore(config: config)
        defer { store.close() }
        let topic = Array("BenchmarkTest".utf8)
        let body = [UInt8](repeating: 97, count: 1024)
        let properties = Array("TAGS\u{1}TagA\u{2}".utf8)
        try topic.withUnsafeBytes { t in try body.withUnsafeBytes { b in try properties.withUnsafeBytes { p in
            let view = MessageView(topic: t, body: b, properties: p, queueID: 3)
            _ = try store.put(view)  // creates the queue's entry outside the measurement
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try store.put(view)) }
            benchmark.stopMeasurement()
        } } }
    }
}
