#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import Logging
import Observability
import Testing
import TestSupport

/// One GET over a raw socket (HTTP/1.0: the server closes when done): the status code and the body.
func httpGet(port: Int, path: String, seconds: Int = 5) -> (status: Int, body: String)? {
    guard let connection = RawConnection(port: port) else { return nil }
    defer { close(connection.fd) }
    var timeout = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ write(connection.fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while bytes.count < 64 << 20 {
        let n = read(connection.fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    guard let end = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) else { return nil }
    let head = String(decoding: bytes[..<end], as: UTF8.self)
    guard let status = Int(head.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return (status, String(decoding: bytes[(end + 4)...], as: UTF8.self))
}

/// Prometheus' text format (0.0.4), read strictly: every sample belongs to a family declared by `# TYPE` before
/// it, names and labels are well formed, values parse, histogram buckets are cumulative and end at `+Inf` with
/// the count. A violation throws, naming the line.
struct PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var samples: [Sample] = []
    var types: [String: String] = [:]

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            func fail(_ why: String) -> FormatError { FormatError(description: "line \(number + 1) \"\(line)\": \(why)") }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw fail("bad TYPE") }
                guard types[String(parts[2])] == nil else { throw fail("family declared twice") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let sample = try Self.sample(line) ?? { throw fail("not a sample") }()
            let family = types[sample.name] != nil ? sample.name
                : ["_bucket", "_sum", "_count"].compactMap { sample.name.hasSuffix($0) ? String(sample.name.dropLast($0.count)) : nil }.first ?? ""
            guard types[family] != nil else { throw fail("no TYPE line before the sample") }
            samples.append(sample)
        }
        try checkHistograms()
    }

    static func sample(_ line: Substring) -> Sample? {
        let nameEnd = line.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") } ?? line.endIndex
        let name = String(line[..<nameEnd])
        guard let first = name.first, first.isLetter || first == "_" else { return nil }
        var rest = line[nameEnd...]
        var labels: [String: String] = [:]
        if rest.hasPrefix("{") {
            guard let close = rest.firstIndex(of: "}") else { return nil }
            for pair in rest[rest.index(after: rest.startIndex)..<close].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[1].hasPrefix("\""), kv[1].hasSuffix("\""), kv[1].count >= 2 else { return nil }
                labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
            }
            rest = rest[rest.index(after: close)...]
        }
        guard rest.hasPrefix(" ") else { return nil }
        let valueText = rest.dropFirst().split(separator: " ").first.map(String.init) ?? ""
        guard let value = valueText == "+Inf" ? Double.infinity : Double(valueText) else { return nil }
        return Sample(name: name, labels: labels, value: value)
    }

    func checkHistograms() throws {
        for (family, type) in types where type == "histogram" {
            let buckets = samples.filter { $0.name == family + "_bucket" }
            var previous = 0.0
            for bucket in buckets {
                guard bucket.value >= previous else { throw FormatError(description: "\(family): buckets are not cumulative") }
                previous = bucket.value
            }
            guard buckets.last?.labels["le"] == "+Inf", value(family + "_count") == buckets.last?.value else {
                throw FormatError(description: "\(family): the +Inf bucket must come last and equal _count")
            }
        }
    }

    /// The sum of every sample named `name` whose labels include `labels`.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }
}

/// The port after `http://host:` in a role's "metrics: Prometheus text format on ..." line.
func metricsPort(in lines: [String]) -> Int? {
    guard let line = lines.first(where: { $0.contains("metrics: Prometheus text format on http://") }),
          let url = line.split(separator: " ").last else { return nil }
    return url.split(separator: ":").last.flatMap { Int($0.split(separator: "/").first ?? "") }
}

/// Reads a whole file (nil when missing).
func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Logs and metrics of real mqnamesrv/mqbroker processes: what a scraper and an operator see after real sends
/// and pulls, and what the log files hold after a graceful stop.
@Suite(.serialized) struct ObservabilityTests {
    static let metricsConfig = "metricsExporterType=PROM\nmetricsPromExporterHost=127.0.0.1\nmetricsPromExporterPort=0\n"

    /// Sends 40 messages and a batch of 5 and pulls them back through the Swift client, then scrapes until every count the broker
    /// exports agrees: messages in and out of the topic, PUT_OK, the send-RT histogram, the group's lag (nothing
    /// committed: all 45), connections, storage. The whole body must parse as Prometheus' text format.
    @Test func metricsEndpointCountsRealSendsAndPulls() async throws {
        let nameServer = try RunningNameServer(extraConfig: Self.metricsConfig)
        let broker = try RunningBroker(nameServers: [nameServer], brokerName: "broker-m", extraConfig: Self.metricsConfig)
        let port = try #require(metricsPort(in: broker.bootLines), "\(broker.bootLines)")
        let producer = Producer(group: "MetricsPG", namesrvAddr: nameServer.address)
        producer.start()
        for index in 0..<40 { _ = try await producer.send(Message(topic: "MetricsTopic", body: "m\(index)", keys: ["mk\(index)"])) }
        _ = try await producer.send(batch: (0..<5).map { Message(topic: "MetricsTopic", body: "b\($0)") })  // one send, five puts
        await producer.shutdown()
        let consumer = PullConsumer(group: "MetricsGroup", namesrvAddr: nameServer.address)
        consumer.start()
        // Pull every queue from where the last pull ended until all 45 came back (dispatch to the queues is async).
        let queues = try await consumer.fetchSubscribeMessageQueues("MetricsTopic")
        var next = [Int64](repeating: 0, count: queues.count)
        var pulled = 0
        let deadline = monotonicNanos() + 20_000_000_000
        while pulled < 45 && monotonicNanos() < deadline {
            for (index, queue) in queues.enumerated() {
                let result = try await consumer.pull(queue, offset: next[index], maxNums: 32)
                pulled += result.messages.count
                next[index] = result.nextBeginOffset
            }
        }
        for queue in queues { try await consumer.updateConsumeOffset(queue, offset: 0) }
        await consumer.shutdown()
        #expect(pulled == 45)

        var parsed: PrometheusText?
        let agreed = await eventually(15) {
            guard let scrape = httpGet(port: port, path: "/metrics"), scrape.status == 200 else { return false }
            parsed = try? PrometheusText(scrape.body)
            guard let metrics = parsed else { return false }
            return metrics.value("rocketmq_messages_in_total", ["topic": "MetricsTopic"]) == 45
                && metrics.value("rocketmq_consumer_lag_messages", ["group": "MetricsGroup", "topic": "MetricsTopic"]) == 45
                && metrics.value("rocketmq_storage_flush_total") != nil
        }
        let metrics = try #require(parsed)
        #expect(agreed, "\(metrics.samples.map { "\($0.name)\($0.labels) \($0.value)" })")
        #expect(metrics.value("rocketmq_messages_out_total", ["topic": "MetricsTopic"]) == 45)
        #expect(metrics.value("rocketmq_put_status_total", ["status": "PUT_OK"]) == 45)
        #expect(metrics.value("rocketmq_put_status_total", ["status": "FLUSH_DISK_TIMEOUT"]) == 0)
        #expect(metrics.value("rocketmq_send_rt_seconds_count") == 41)
        #expect(metrics.types["rocketmq_send_rt_seconds"] == "histogram")
        #expect((metrics.value("rocketmq_connections_accepted_total") ?? 0) >= 2)
        #expect((metrics.value("rocketmq_storage_size_bytes") ?? 0) > 0)
        #expect((0...1).contains(metrics.value("rocketmq_storage_disk_used_ratio") ?? -1))
        #expect(metrics.value("rocketmq_ha_in_sync_slaves") == 0)
        #expect(httpGet(port: port, path: "/nothing")?.status == 404)

        // The NameServer's endpoint: the broker is registered, the topic routed.
        let namesrvPort = try #require(metricsPort(in: nameServer.output), "\(nameServer.output)")
        let namesrv = try PrometheusText(try #require(httpGet(port: namesrvPort, path: "/metrics")).body)
        #expect(namesrv.value("rocketmq_namesrv_brokers") == 1)
        #expect((namesrv.value("rocketmq_namesrv_topics") ?? 0) >= 1)
    }

    /// Replication lag on both sides of a SYNC_MASTER group: the master shows its slave (in sync, bytes and
    /// seconds behind), the slave its link; both count the puts the master took.
    @Test func replicationLagIsExportedByMasterAndSlave() async throws {
        let group = try RunningGroup(masterConfig: Self.metricsConfig, slaveConfig: Self.metricsConfig, brokerName: "broker-hm")
        defer { group.stop() }
        let masterPort = try #require(metricsPort(in: group.master.bootLines))
        let slavePort = try #require(metricsPort(in: group.slave.bootLines))
        let producer = Producer(group: "MetricsHA", namesrvAddr: group.namesrvAddr)
        producer.start()
        var sent = 0
        // The first sends may find no slave yet (SLAVE_NOT_AVAILABLE still stores them): every answer is a put.
        for index in 0..<10 { if (try? await producer.send(Message(topic: "MetricsHATopic", body: "h\(index)"))) != nil { sent += 1 } }
        await producer.shutdown()
        func scrape(_ port: Int) -> PrometheusText? { httpGet(port: port, path: "/metrics").flatMap { try? PrometheusText($0.body) } }
        #expect(await eventually(20) {
            guard let master = scrape(masterPort) else { return false }
            return master.value("rocketmq_ha_in_sync_slaves") == 1 && master.value("rocketmq_ha_lag_bytes") == 0
                && master.value("rocketmq_ha_lag_seconds") != nil
                && master.value("rocketmq_messages_in_total", ["topic": "MetricsHATopic"]) == Double(sent)
        }, "\(scrape(masterPort)?.samples.filter { $0.name.hasPrefix("rocketmq_ha") }.map { "\($0.name)\($0.labels) \($0.value)" } ?? [])")
        #expect(await eventually(20) {
            guard let slave = scrape(slavePort) else { return false }
            return slave.value("rocketmq_ha_connected") == 1 && slave.value("rocketmq_ha_slave_behind_bytes") == 0
                && slave.value("rocketmq_messages_in_total", ["topic": "MetricsHATopic"]) == Double(sent)
        })
        #expect(sent == 10)
    }

    /// A DLedger group: the member that takes writes says so, and shows each follower's lag in entries; every
    /// member exports the term and commit index; dledger.log holds the Raft events.
    @Test func dledgerStateAndLagAreExported() async throws {
        let group = try RunningDLedgerGroup(brokerName: "broker-dm", extraConfig: Self.metricsConfig)
        defer { group.stop() }
        let admin = Admin(namesrvAddr: group.namesrvAddr)
        let leader = try #require(await group.writableMember(admin))
        await admin.shutdown()
        let port = try #require(metricsPort(in: leader.bootLines))
        #expect(await eventually(20) {
            guard let metrics = httpGet(port: port, path: "/metrics").flatMap({ try? PrometheusText($0.body) }) else { return false }
            return metrics.value("rocketmq_dledger_leader") == 1 && (metrics.value("rocketmq_dledger_term") ?? 0) >= 1
                && metrics.samples.filter { $0.name == "rocketmq_dledger_lag_entries" }.count == 2
        })
        for member in group.members where member !== leader {
            let memberPort = try #require(metricsPort(in: member.bootLines))
            let metrics = try PrometheusText(try #require(httpGet(port: memberPort, path: "/metrics")).body)
            #expect(metrics.value("rocketmq_dledger_leader") == 0)
        }
        #expect(await eventually(10) { (readText(leader.directory.path + "/store/logs/dledger.log") ?? "").contains("RocketmqDLedger - ") })
    }

    /// A broker and a NameServer stopped with SIGTERM exit 0 and leave RocketMQ-named log files: the start-up
    /// banner (version, role, addresses, config file), boot success and the stop, one line per event in logback's
    /// layout; the store's events in store.log.
    @Test func logFilesHoldTheBannerAndEventsAfterAGracefulStop() async throws {
        let nameServer = try RunningNameServer()
        let broker = try RunningBroker(nameServers: [nameServer], brokerName: "broker-l")
        #expect(broker.bootLines.contains { $0.contains("==== mqbroker start: version=") }, "the banner is on stdout too")
        // A frame whose length is negative: the connection is closed and remoting.log says why.
        #expect(serverClosesAfterSending([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0], toPort: broker.port))
        let logs = broker.directory.path + "/store/logs/"
        #expect(await eventually(10) { (readText(logs + "remoting.log") ?? "").contains("WARN RocketmqRemoting - remoting: closing") })
        #expect(broker.process?.terminate(seconds: 20) == 0)
        #expect(nameServer.process.terminate(seconds: 20) == 0)

        let brokerLog = try #require(readText(logs + "broker.log"))
        let lines = brokerLog.split(separator: "\n")
        let banner = try #require(lines.first { $0.contains("==== mqbroker start: version=") })
        for field in ["protocol=V4_9_7", "brokerRole=ASYNC_MASTER", "listen=127.0.0.1:\(broker.port)", "ha=127.0.0.1:",
                      "namesrvAddr=\(nameServer.address)", "configFile=\(broker.directory.path)/broker.conf", "metrics=off"] {
            #expect(banner.contains(field), "\(field) in \(banner)")
        }
        #expect(lines.contains { $0.contains("boot success") } && lines.contains { $0.contains("mqbroker: stopped") })
        for line in lines { #expect(Self.isLogbackLine(line), "\(line)") }
        let storeLog = try #require(readText(logs + "store.log"))
        #expect(storeLog.contains("RocketmqStore - HA master listening on"), "\(storeLog)")

        let namesrvLog = try #require(readText(nameServer.directory.path + "/logs/namesrv.log"))
        #expect(namesrvLog.contains("==== mqnamesrv start: version=") && namesrvLog.contains("The Name Server boot success"))
        #expect(namesrvLog.contains("mqnamesrv: shutting down"))
    }

    /// Bad metrics settings: a bad value stops start-up naming file, line, key and the allowed values (exit 2); a
    /// port already taken stops the broker after a graceful close (exit 1), saying which address.
    @Test func badMetricsSettingsStopStartUpWithAClearError() async throws {
        let nameServer = try RunningNameServer(extraConfig: Self.metricsConfig)
        let taken = try #require(metricsPort(in: nameServer.output))
        let binary = try #require(builtExecutable("mqbroker"))
        let directory = TemporaryDirectory("metrics-conf")
        writeText(directory.path + "/bad.conf", "brokerName=broker-x\nmetricsExporterType=YES\n")
        let bad = try ChildProcess.run([binary, "-c", directory.path + "/bad.conf"], seconds: 20)
        #expect(bad.status == 2)
        #expect(bad.output.contains("bad.conf:2: metricsExporterType must be PROM or DISABLE, not \"YES\""), "\(bad.output)")
        writeText(directory.path + "/clash.conf", """
            brokerName=broker-x
            brokerIP1=127.0.0.1
            listenPort=\(freePort())
            haListenPort=\(freePort())
            namesrvAddr=\(nameServer.address)
            storePathRootDir=\(directory.path)/store
            mappedFileSizeCommitLog=1048576
            maxMessageSize=65536
            metricsExporterType=PROM
            metricsPromExporterHost=127.0.0.1
            metricsPromExporterPort=\(taken)
            """)
        let clash = try ChildProcess.run([binary, "-c", directory.path + "/clash.conf"], seconds: 20)
        #expect(clash.status == 1)
        #expect(clash.output.contains("cannot listen on port \(taken) (metricsPromExporterPort)"), "\(clash.output)")
    }

    /// The handler's layout in isolation: one line per event however many newlines the message holds, RocketMQ's
    /// level names, metadata appended, lines from many threads never interleaved.
    @Test func fileLogHandlerWritesOneLogbackLinePerEvent() async throws {
        let directory = TemporaryDirectory("loghandler")
        let file = try LogFile(path: directory.path + "/x.log")
        var logger = Logger(label: "RocketmqStore") { FileLogHandler(label: $0, file: file, level: .info, console: false) }
        logger[metadataKey: "file"] = "00000000000000000000"
        logger.warning("recovery:\ntorn record\r\nat 4096")
        logger.debug("below the level: not written")
        logger.critical("flush failed")
        let shared = logger
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<4 { group.addTask { for index in 0..<250 { shared.info("task \(task) line \(index)") } } }
        }
        let lines = try #require(readText(directory.path + "/x.log")).split(separator: "\n")
        #expect(lines.count == 1_002)
        for line in lines { #expect(Self.isLogbackLine(line), "\(line)") }
        #expect(lines[0].hasSuffix("WARN RocketmqStore - recovery:\\ntorn record\\r\\nat 4096 file=00000000000000000000"), "\(lines[0])")
        #expect(lines[1].contains(" ERROR RocketmqStore - flush failed"))
    }

    /// `2026-11-30 02:30:00,123 INFO RocketmqBroker - text`.
    static func isLogbackLine(_ line: Substring) -> Bool {
        let parts = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].count == 10, parts[1].count == 12, parts[1].contains(","), parts[3].hasPrefix("Rocketmq") else {
            return false
        }
        return ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(String(parts[2])) && parts[4].hasPrefix("- ")
    }
}
