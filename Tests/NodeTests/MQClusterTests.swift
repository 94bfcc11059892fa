#if canImport(Glibc)
import Glibc
#endif
import Client
import CommitLog
import Common
import Testing
import TestSupport

/// A copy of one of the repository's conf sets (`conf/<name>`) in a temporary directory, every port moved to a free
/// one (so the test never collides with a set someone runs) and 4 MiB commit-log files; the run root beside it.
final class ConfSetCopy {
    let directory = TemporaryDirectory("mqcluster")
    let name: String
    var path: String { directory.path + "/" + name }
    var root: String { directory.path + "/run" }
    var runDirectory: String { root + "/" + name }
    private(set) var namesrvAddr = ""
    private var ports: [Int: Int] = [:]

    static let repository: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    init(_ name: String) throws {
        self.name = name
        mkdir(path, 0o755)
        let source = Self.repository + "/conf/" + name
        guard let directory = opendir(source) else { throw StoreError(.io, "no conf set \(source)") }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let file = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            guard file.hasSuffix(".properties"), let text = TextFile.read(source + "/" + file) else { continue }
            writeText(path + "/" + file, rewrite(text))
        }
        namesrvAddr = ports.keys.filter { (9800..<9999).contains($0) }.sorted().map { "127.0.0.1:\(ports[$0]!)" }.joined(separator: ";")
    }

    func moved(_ port: Int) -> Int {
        if let new = ports[port] { return new }
        let new = freePort()
        ports[port] = new
        return new
    }

    /// Every port in listenPort, namesrvAddr and dLegerPeers moved; a master's HA port set explicitly (free too).
    func rewrite(_ text: String) -> String {
        var lines: [String] = []
        for line in text.split(separator: "\n").map(String.init) {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else {
                lines.append(line)
                continue
            }
            let key = String(line[..<equals])
            let value = String(line[line.index(after: equals)...])
            switch key {
            case "listenPort": lines.append("listenPort=\(moved(Int(value)!))")
            case "namesrvAddr", "dLegerPeers":
                let moved = value.split(separator: ";").map { part -> String in
                    let colon = part.lastIndex(of: ":")!
                    return part[...colon] + "\(self.moved(Int(part[part.index(after: colon)...])!))"
                }
                lines.append(key + "=" + moved.joined(separator: ";"))
            case "mappedFileSizeCommitLog": lines.append("mappedFileSizeCommitLog=4194304\nmappedFileSizeConsumeQueue=60000\nmaxMessageSize=65536")
            default: lines.append(line)
            }
        }
        if text.contains("brokerRole=") && !text.contains("brokerRole=SLAVE") { lines.append("haListenPort=\(freePort())") }
        return lines.joined(separator: "\n") + "\n"
    }

    func append(_ file: String, _ text: String) {
        writeText(path + "/" + file, (TextFile.read(path + "/" + file) ?? "") + text)
    }

    func pid(_ role: String) -> pid_t? {
        TextFile.read(runDirectory + "/pids/\(role).pid").flatMap { pid_t($0.trimmingSuffix(while: { $0 == "\n" })) }
    }

    /// Runs `mqcluster COMMAND <this set> --root <root> ARGUMENTS` to its end (at most `seconds`).
    func mqcluster(_ command: String, _ arguments: [String] = [], seconds: Double = 90) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("mqcluster") else { throw StoreError(.io, "mqcluster is not built; run swift build") }
        return try ChildProcess.run([binary, command, path, "--root", root] + arguments, seconds: seconds)
    }
}

/// Whether `pid` is a live (not zombie) process.
func processRuns(_ pid: pid_t) -> Bool {
    guard let stat = TextFile.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)...].first
    return state != "Z" && state != "X"
}

/// `mqcluster` over real processes: each conf set of the repository comes up (every role answers, registers, and
/// takes sends), `status` shows every role running, `down` stops them all gracefully; bad sets stop `up` before
/// anything starts, naming file, line and key; a role dying during `up` is reported with its log and the rest stopped;
/// stale pid files are said; a role that ignores SIGTERM is killed and named.
@Suite(.serialized) struct MQClusterTests {
    @Test(arguments: ["2m-noslave", "2m-2s-sync", "2m-2s-async", "dledger"])
    func upStatusDownRunsTheConfSet(_ name: String) async throws {
        let set = try ConfSetCopy(name)
        defer { _ = try? set.mqcluster("down", ["--timeout", "10"], seconds: 40) }
        let up = try set.mqcluster("up", ["--timeout", "60"])
        #expect(up.status == 0, "\(up.output)")
        #expect(up.output.contains("\(name) is up"))
        let brokerFiles = ["2m-noslave": 2, "dledger": 3][name] ?? 4
        #expect(up.output.split(separator: "\n").filter { $0.hasPrefix("DefaultCluster") || $0.hasPrefix("RaftCluster") }.count
                == brokerFiles, "the cluster list names every broker: \(up.output)")

        // The topic is created by the first send (autoCreateTopicEnable, RocketMQ's default), as in RocketMQ's quick start.
        var settings = Producer.Settings()
        settings.group = "PG-mqcluster"
        let producer = Producer(config: ClientConfig(namesrvAddr: set.namesrvAddr), settings: settings)
        producer.start()
        var sent = 0
        var lastError = ""
        let deadline = monotonicNanos() + 30_000_000_000
        while sent < 20 && monotonicNanos() < deadline {
            do {
                if try await producer.send(Message(topic: "ClusterTopic", body: "m\(sent)")).status == .sendOK { sent += 1 }
            } catch { lastError = "\(error)" }
        }
        await producer.shutdown()
        #expect(sent == 20, "the set takes sends (\(lastError))")

        let status = try set.mqcluster("status", ["--interval", "200"])
        #expect(status.status == 0, "\(status.output)")
        let rows = status.output.split(separator: "\n").dropFirst()
        #expect(rows.count == brokerFiles + 2 && rows.allSatisfy { $0.hasSuffix("running") }, "\(status.output)")
        if name.hasPrefix("2m-2s") { #expect(status.output.contains("(1/1 in sync)"), "\(status.output)") }
        if name == "dledger" { #expect(status.output.contains("DLEDGER-LEADER"), "\(status.output)") }

        let firstBroker = name == "dledger" ? "broker-n0" : "broker-a"
        let logs = try set.mqcluster("logs", [firstBroker, "namesrv-1", "-n", "20"])
        #expect(logs.status == 0 && logs.output.contains("==> \(set.runDirectory)/logs/\(firstBroker).log <=="), "\(logs.output)")
        #expect(logs.output.contains("The broker[") && logs.output.contains("The Name Server boot success"), "\(logs.output)")
        if name == "2m-noslave" {  // -f follows until stopped: SIGTERM (ChildProcess.run's end) must reach tail
            let followed = try set.mqcluster("logs", [firstBroker, "-f"], seconds: 1.5)
            #expect(followed.status == nil && followed.output.contains("The broker["), "\(followed.output)")
        }
        let unknownRole = try set.mqcluster("logs", ["broker-z"])
        #expect(unknownRole.status == 2 && unknownRole.output.contains("has no role broker-z"), "\(unknownRole.output)")

        let pids = ["namesrv-1", "namesrv-2", firstBroker].compactMap { set.pid($0) }
        #expect(pids.count == 3)
        let down = try set.mqcluster("down", ["--timeout", "20"], seconds: 60)
        #expect(down.status == 0, "\(down.output)")
        #expect(down.output.split(separator: "\n").filter { $0.hasSuffix(") stopped") }.count == brokerFiles + 2, "\(down.output)")
        #expect(!down.output.contains("killed"), "\(down.output)")
        #expect(pids.allSatisfy { !processRuns($0) }, "every role is gone")
        let brokerLog = TextFile.read(set.runDirectory + "/logs/\(firstBroker).log") ?? ""
        #expect(brokerLog.contains("mqbroker: shutting down") && brokerLog.hasSuffix("mqbroker: stopped\n"),
                "the broker went the graceful way (flush, unregister): \(brokerLog.suffix(300))")
        #expect(set.pid("namesrv-1") == nil, "pid files are removed")
        let after = try set.mqcluster("status", ["--interval", "10"])
        #expect(after.status == 1 && after.output.contains("stopped"), "\(after.output)")
    }

    @Test func upRefusesABadConfSetBeforeAnythingStarts() async throws {
        let missing = try ChildProcess.run([try #require(builtExecutable("mqcluster")), "up", "/nonexistent/conf-set"])
        #expect(missing.status == 2 && missing.output.contains("/nonexistent/conf-set: not a conf set directory"), "\(missing.output)")

        let empty = TemporaryDirectory("mqcluster-empty")
        let noFiles = try ChildProcess.run([try #require(builtExecutable("mqcluster")), "up", empty.path])
        #expect(noFiles.status == 2 && noFiles.output.contains("no NameServer file (namesrv*.properties)"), "\(noFiles.output)")

        let badKey = try ConfSetCopy("2m-noslave")
        badKey.append("broker-b.properties", "flushDiskTyp=SYNC_FLUSH\n")
        let line = (TextFile.read(badKey.path + "/broker-b.properties") ?? "").split(separator: "\n").count
        let refusedKey = try badKey.mqcluster("up")
        #expect(refusedKey.status == 1, "\(refusedKey.output)")
        #expect(refusedKey.output.contains("broker-b.properties:\(line): unknown key flushDiskTyp (a typo?"), "\(refusedKey.output)")
        #expect(refusedKey.output.contains("nothing started") && badKey.pid("namesrv-1") == nil)

        let badValue = try ConfSetCopy("2m-noslave")
        badValue.append("broker-a.properties", "brokerRole=BOSS\n")
        let refusedValue = try badValue.mqcluster("up")
        #expect(refusedValue.status == 1 && refusedValue.output.contains("brokerRole must be"), "\(refusedValue.output)")

        let clash = try ConfSetCopy("2m-noslave")
        let brokerA = TextFile.read(clash.path + "/broker-a.properties") ?? ""
        let port = brokerA.split(separator: "\n").first { $0.hasPrefix("listenPort=") }!.dropFirst("listenPort=".count)
        clash.append("broker-b.properties", "listenPort=\(port)\n")
        let refusedClash = try clash.mqcluster("up")
        #expect(refusedClash.status == 2 && refusedClash.output.contains("port \(port) is also bound by broker-a"), "\(refusedClash.output)")

        let inUse = try ConfSetCopy("2m-noslave")
        let first = Int(inUse.namesrvAddr.split(separator: ";")[0].split(separator: ":")[1])!
        let listener = try #require(ListeningSocket(port: first))
        let refusedPort = try inUse.mqcluster("up")
        #expect(refusedPort.status == 1 && refusedPort.output.contains("namesrv-1.properties:2: listenPort: port \(first) is in use"),
                "\(refusedPort.output)")
        #expect(inUse.pid("namesrv-2") == nil, "nothing started")
        _ = listener
    }

    @Test func aRoleThatDiesDuringUpIsReportedWithItsLogAndTheOthersAreStopped() async throws {
        let set = try ConfSetCopy("2m-noslave")
        defer { _ = try? set.mqcluster("down", ["--timeout", "10"], seconds: 40) }
        set.append("broker-b.properties", "storePathRootDir=/proc/mqcluster-test-cannot-write\n")
        let up = try set.mqcluster("up", ["--timeout", "30"])
        #expect(up.status == 1, "\(up.output)")
        // The broker stops at its first use of the store directory: creating its log directory (exit 2).
        #expect(up.output.contains("broker-b (pid") && up.output.contains("exited with status 2 during start-up"), "\(up.output)")
        #expect(up.output.contains("mqbroker: cannot create log directory /proc/mqcluster-test-cannot-write"),
                "the log's tail shows why: \(up.output)")
        let stopped = up.output.split(separator: "\n").filter { $0.hasSuffix(") stopped") }
        #expect(stopped.count == 3, "both NameServers and broker-a are stopped again: \(up.output)")
        #expect(set.pid("namesrv-1") == nil && set.pid("broker-a") == nil)
    }

    @Test func staleAndStubbornRolesAreSaidAndAStubbornOneIsKilled() async throws {
        let set = try ConfSetCopy("2m-noslave")
        defer { _ = try? set.mqcluster("down", ["--timeout", "10"], seconds: 40) }
        #expect(try set.mqcluster("up", ["--timeout", "60"]).status == 0)
        let again = try set.mqcluster("up", ["--timeout", "60"])
        #expect(again.status == 1 && again.output.contains("namesrv-1 is already running"), "\(again.output)")

        let broker = try #require(set.pid("broker-b"))
        kill(broker, SIGSTOP)  // SIGTERM then waits in the queue: only SIGKILL ends it
        let gone = try ChildProcess(["/bin/true"])
        _ = gone.terminate()
        let dead = gone.pid  // a pid that no longer exists
        writeText(set.runDirectory + "/pids/namesrv-2.pid", "\(dead)\n")
        let namesrv = try #require(set.pid("namesrv-1"))
        kill(namesrv, SIGKILL)  // namesrv-1 dies behind mqcluster's back: its pid file is stale too

        let status = try set.mqcluster("status", ["--interval", "10"])
        #expect(status.status == 1 && status.output.contains("stale pid file (pid \(dead) gone)"), "\(status.output)")
        let down = try set.mqcluster("down", ["--timeout", "2"], seconds: 40)
        #expect(down.output.contains("broker-b (pid \(broker)) did not stop within 2 s of SIGTERM: killed (SIGKILL)"), "\(down.output)")
        #expect(down.output.contains("killed (SIGKILL) after 2 s: broker-b"), "\(down.output)")
        #expect(down.output.contains("namesrv-2: stale pid file"), "\(down.output)")
        #expect(down.output.contains("broker-a (pid") && down.output.contains("namesrv-1: stale pid file"), "\(down.output)")
        #expect(!processRuns(broker))
    }
}

/// A TCP socket listening on 0.0.0.0:`port`, closed with the value (a port "in use by another process").
final class ListeningSocket {
    let fd: Int32
    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            close(fd)
            return nil
        }
    }
    deinit { close(fd) }
}
