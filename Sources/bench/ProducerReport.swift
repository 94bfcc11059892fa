/// The HTML pages of `bench producer` and `bench matrix`: charts of SEND_OK throughput and RT, a summary
/// table and a status table (every send by outcome, and the RT of those that were not SEND_OK).
extension Report {
    static func producerPage(_ result: ProducerResult, shape: String) -> String {
        let tps = ChartSeries(name: "messages/s", points: result.perSecond.enumerated().map { (Double($0.offset + 1), Double($0.element)) })
        let curve = ChartSeries(name: "send RT (ms)", points: rtCurve(result))
        var lagChart = ""
        if let lag = result.replicationLag {
            lagChart = lineChart(title: "Replication lag (master's HA status every \(ReplicationLag.intervalMillis) ms)", xLabel: "second",
                                 yLabel: "bytes behind",
                                 series: [ChartSeries(name: "lag (bytes)", points: lag.samples.map { ($0.atSeconds, Double($0.bytes)) })])
        }
        return page(
            title: "bench producer — \(result.size) B, \(result.threads) threads, \(result.mode)",
            intro: "Broker: \(escape(shape)). \(format(result.tps, 0)) msgs/s (SEND_OK) average over \(format(result.seconds, 1)) s; "
                + "\(result.failed) sends not SEND_OK (\(result.statuses.nonOKAnswers) non-OK answers). Replication: "
                + "\(escape(result.replicationLabel)).",
            sections: [
                ("Summary", summaryTable([("run", result)])),
                ("Send status", statusTable([("run", result)])),
            ] + lagSection([("run", result)]) + [
                ("Charts", "<div class=\"charts\">"
                    + lineChart(title: "Throughput per second", xLabel: "second", yLabel: "messages/s", series: [tps])
                    + lineChart(title: "Send RT percentiles", xLabel: "percentile", yLabel: "ms", series: [curve], xTicks: rtTicks)
                    + lagChart + "</div>"),
            ])
    }

    static func matrixPage(_ results: [(shape: LocalCluster.Shape, result: ProducerResult)], sizes: [Int], threads: [Int],
                           duration: Double, mode: String) -> String {
        let shapes = results.map(\.shape).reduce(into: [LocalCluster.Shape]()) { if !$0.contains($1) { $0.append($1) } }
        var charts = ""
        let openLoop = results.contains { $0.result.openLoop != nil }
        for size in sizes where openLoop {
            charts += rateCurves(results, shapes: shapes, size: size, threads: threads.max() ?? 1)
        }
        for size in sizes where !openLoop {
            let throughput = shapes.map { shape in
                ChartSeries(name: "\(shape)", points: results.filter { $0.shape == shape && $0.result.size == size }
                    .map { (Double($0.result.threads), $0.result.tps) })
            }
            charts += lineChart(title: "Throughput vs threads, \(size) B", xLabel: "sender threads", yLabel: "messages/s",
                                series: throughput, xLog: true, xTicks: threads.map { (Double($0), "\($0)") })
            let most = threads.max() ?? 1
            let curves = shapes.compactMap { shape -> ChartSeries? in
                guard let cell = results.first(where: { $0.shape == shape && $0.result.size == size && $0.result.threads == most }) else { return nil }
                return ChartSeries(name: "\(shape)", points: rtCurve(cell.result))
            }
            charts += lineChart(title: "Send RT percentiles, \(size) B, \(most) threads", xLabel: "percentile", yLabel: "ms",
                                series: curves, xTicks: rtTicks)
            charts += lagCharts(results, shapes: shapes, size: size, threads: threads)
        }
        let rows = results.map { ("\($0.shape) \($0.result.size) B \($0.result.threads) thr", $0.result) }
        return page(
            title: "bench matrix",
            intro: "Each cell: a fresh local NameServer and broker (with replication: a master and a slave, in sync before the "
                + "load starts), \(format(duration, 0)) s of \(mode) sends through the Swift client on loopback. Throughput and RT "
                + "count SEND_OK sends only. CPU per message: user + system time of the server's processes (every broker, or "
                + "the peer's server) and of this bench process over the measured window, divided by SEND_OK messages. "
                + "Open-loop cells (a target rate) send on a fixed schedule and time each send from when it was due.",
            sections: [("Charts", "<div class=\"charts\">\(charts)</div>"), ("Cells", summaryTable(rows)), ("Send status", statusTable(rows))]
                + lagSection(rows))
    }

    /// Latency against achieved throughput (open loop, `--rates`): one chart per percentile (p50, p99, p99.9),
    /// a line per mode at `threads` senders, a point per target rate; RT counts from each send's due time.
    static func rateCurves(_ results: [(shape: LocalCluster.Shape, result: ProducerResult)], shapes: [LocalCluster.Shape], size: Int,
                           threads: Int) -> String {
        [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)].map { name, percentile in
            let series = shapes.enumerated().map { index, shape in
                ChartSeries(name: "\(shape)", points: results.filter {
                    $0.shape == shape && $0.result.size == size && $0.result.threads == threads && $0.result.openLoop != nil
                }.map { (x: $0.result.tps, y: Double($0.result.micros(percentile)) / 1000) }, colorIndex: index)
            }
            return lineChart(title: "Send RT \(name) vs achieved rate, \(size) B, \(threads) threads (open loop)",
                             xLabel: "achieved messages/s (SEND_OK)", yLabel: "ms", series: series)
        }.joined()
    }

    /// The RT percentile curve of SEND_OK sends: x is the number of nines (p50 = 0.3, p90 = 1, p99 = 2 ... max = 5).
    static func rtCurve(_ result: ProducerResult) -> [(x: Double, y: Double)] {
        var points = ProducerResult.percentiles.map { (x: -log10(1 - $0.1 / 100), y: Double(result.micros($0.1)) / 1000) }
        points.append((x: 5, y: Double(result.maxMicros) / 1000))
        return points
    }

    static let rtTicks: [(Double, String)] = ProducerResult.percentiles.map { (-log10(1 - $0.1 / 100), $0.0) } + [(5, "max")]

    /// TPS, MB/s and RT of SEND_OK sends; `non-OK answers` = FLUSH_DISK_TIMEOUT + FLUSH_SLAVE_TIMEOUT +
    /// SLAVE_NOT_AVAILABLE; `failed` = every send not SEND_OK (those answers included), as JSON `failed`.
    static func summaryTable(_ rows: [(String, ProducerResult)]) -> String {
        let header = ["cell", "replication", "TPS", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "p99.99 ms", "max ms", "non-OK answers", "failed",
                      "server CPU µs/msg", "client CPU µs/msg", "target msgs/s", "behind p99 ms"]
        return table(header, rows.map { name, r in
            [name, r.replicationLabel, format(r.tps, 0), format(r.mbps, 1)] + ProducerResult.percentiles.map { format(Double(r.micros($0.1)) / 1000, 3) }
                + [format(Double(r.maxMicros) / 1000, 3), "\(r.statuses.nonOKAnswers)", "\(r.failed)"]
                + [r.cpu?.serverMicrosPerMessage.map { format($0, 1) } ?? "-", r.cpu.map { format($0.clientMicrosPerMessage, 1) } ?? "-"]
                + [r.openLoop.map { format($0.targetRate, 0) } ?? "-", r.openLoop.map { format(Double($0.behindMicros(99)) / 1000, 3) } ?? "-"]
        })
    }

    /// Sends by outcome per run or cell, and the RT of the sends that were not SEND_OK.
    static func statusTable(_ rows: [(String, ProducerResult)]) -> String {
        let header = ["cell", "replication"] + SendOutcome.allCases.map(\.name) + ["failed p50 ms", "failed p99 ms", "failed max ms"]
        return table(header, rows.map { name, r in
            [name, r.replicationLabel] + SendOutcome.allCases.map { "\(r.statuses[$0])" }
                + [r.failedMicros(50), r.failedMicros(99), r.failedMaxMicros].map { format(Double($0) / 1000, 3) }
        })
    }

    /// The replication-lag section when some row had a slave: per row the samples taken (and missed) and the
    /// p50, p99 and max of the sampled lag in bytes and in milliseconds.
    static func lagSection(_ rows: [(String, ProducerResult)]) -> [(heading: String, html: String)] {
        let lagged = rows.compactMap { name, r in r.replicationLag.map { (name, r.replicationLabel, $0) } }
        guard !lagged.isEmpty else { return [] }
        let header = ["cell", "replication", "samples", "missed", "lag p50 ms", "lag p99 ms", "lag max ms", "lag p50 bytes",
                      "lag p99 bytes", "lag max bytes"]
        let body = table(header, lagged.map { name, label, lag in
            [name, label, "\(lag.samples.count)", "\(lag.missed)", "\(lag.millis(50))", "\(lag.millis(99))", "\(lag.maxMillis)",
             "\(lag.bytes(50))", "\(lag.bytes(99))", "\(lag.maxBytes)"]
        })
        let note = "<p>Sampled from the master's HA status (GET_BROKER_HA_STATUS) every \(ReplicationLag.intervalMillis) ms while the "
            + "senders ran: bytes = the master's log end minus the slave's last reported offset; ms = time since the slave last "
            + "reported everything the master had. An observation at that granularity, not a per-message latency.</p>"
        return [("Replication lag", note + body)]
    }

    /// Lag p99 (bytes and ms) against sender threads, one line per replicated mode; empty without one.
    static func lagCharts(_ results: [(shape: LocalCluster.Shape, result: ProducerResult)], shapes: [LocalCluster.Shape], size: Int,
                          threads: [Int]) -> String {
        let replicated = shapes.filter { shape in results.contains { $0.shape == shape && $0.result.replicationLag != nil } }
        guard !replicated.isEmpty else { return "" }
        func series(_ value: @escaping (ReplicationLag) -> Int64) -> [ChartSeries] {
            replicated.map { shape in
                ChartSeries(name: "\(shape)", points: results.filter { $0.shape == shape && $0.result.size == size }
                    .compactMap { cell in cell.result.replicationLag.map { (Double(cell.result.threads), Double(value($0))) } },
                    colorIndex: shapes.firstIndex(of: shape))  // each mode keeps its throughput chart's colour
            }
        }
        let ticks = threads.map { (Double($0), "\($0)") }
        return lineChart(title: "Replication lag p99 (bytes), \(size) B", xLabel: "sender threads", yLabel: "bytes behind",
                         series: series { $0.bytes(99) }, xLog: true, xTicks: ticks)
            + lineChart(title: "Replication lag p99 (ms), \(size) B", xLabel: "sender threads", yLabel: "ms",
                        series: series { $0.millis(99) }, xLog: true, xTicks: ticks)
    }
}

#if canImport(Glibc)
import Glibc
#endif
