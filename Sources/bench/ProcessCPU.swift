#if canImport(Glibc)
import Glibc
#endif
import Client
import IndexFile

/// User and system CPU time of one or more processes, in microseconds.
struct CPUTime: Sendable, Equatable {
    var userMicros: UInt64 = 0
    var sysMicros: UInt64 = 0
    var totalMicros: UInt64 { userMicros + sysMicros }

    /// What was spent from `earlier` to this sample (0 where a counter went backwards: a process restarted).
    func since(_ earlier: CPUTime) -> CPUTime {
        CPUTime(userMicros: userMicros >= earlier.userMicros ? userMicros - earlier.userMicros : 0,
                sysMicros: sysMicros >= earlier.sysMicros ? sysMicros - earlier.sysMicros : 0)
    }

    static func + (left: CPUTime, right: CPUTime) -> CPUTime {
        CPUTime(userMicros: left.userMicros + right.userMicros, sysMicros: left.sysMicros + right.sysMicros)
    }

    /// This process (`getrusage(RUSAGE_SELF)`: every thread, microsecond resolution).
    static func ofSelf() -> CPUTime {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func micros(_ time: timeval) -> UInt64 { UInt64(max(0, time.tv_sec)) * 1_000_000 + UInt64(max(0, time.tv_usec)) }
        return CPUTime(userMicros: micros(usage.ru_utime), sysMicros: micros(usage.ru_stime))
    }

    /// A child process from `/proc/PID/stat` (`utime` and `stime`, fields 14 and 15, in clock ticks: 10 ms
    /// at the usual 100 Hz, so a run of seconds is measured to well under 1 %); nil when it is gone.
    static func ofProcess(_ pid: pid_t) -> CPUTime? {
        guard let text = readTextFile("/proc/\(pid)/stat") else { return nil }
        return parseStat(text, ticksPerSecond: UInt64(max(1, sysconf(Int32(_SC_CLK_TCK)))))
    }

    /// `utime` and `stime` of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
    /// hold spaces, so fields are counted after its closing parenthesis (field 3 is the first there).
    static func parseStat(_ line: String, ticksPerSecond: UInt64) -> CPUTime? {
        guard let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        let scale = 1_000_000 / ticksPerSecond
        return CPUTime(userMicros: user * scale, sysMicros: system * scale)
    }
}

/// Where a run reads the server's CPU time: processes this bench started (their `/proc/PID/stat`), or brokers
/// it did not start (GET_BROKER_RUNTIME_INFO's `cpuUserMicros`/`cpuSysMicros`, each broker's own getrusage).
enum ServerCPUSource: Sendable {
    case processes([pid_t])
    case brokers(namesrvAddr: String)

    /// The sum over every server process, or nil when one could not be read (a broker without the keys, a
    /// process gone): a partial sum would understate the cost.
    func sample() async -> CPUTime? {
        switch self {
        case .processes(let pids):
            var total = CPUTime()
            for pid in pids {
                guard let one = CPUTime.ofProcess(pid) else { return nil }
                total = total + one
            }
            return pids.isEmpty ? nil : total
        case .brokers(let namesrvAddr):
            return await Self.sampleBrokers(namesrvAddr)
        }
    }

    /// Every broker the NameServer lists (masters and slaves: a slave's copying is part of a message's cost).
    private static func sampleBrokers(_ namesrvAddr: String) async -> CPUTime? {
        let admin = Admin(namesrvAddr: namesrvAddr, timeoutMillis: 3_000)
        defer { Task { await admin.shutdown() } }
        guard let brokers = try? await admin.clusterInfo(), !brokers.isEmpty else { return nil }
        var total = CPUTime()
        for broker in brokers {
            guard let table = try? await admin.brokerRuntimeInfo(broker.address),
                  let user = table.first(where: { $0.0 == "cpuUserMicros" }).flatMap({ UInt64($0.1) }),
                  let system = table.first(where: { $0.0 == "cpuSysMicros" }).flatMap({ UInt64($0.1) }) else { return nil }
            total = total + CPUTime(userMicros: user, sysMicros: system)
        }
        return total
    }
}

/// The CPU a run cost per SEND_OK message: the server's (every broker process, or the peer's server) and this
/// client's (the whole bench process: senders, event loops, the per-second reporter).
struct CPUPerMessage: Sendable {
    var server: CPUTime?
    var client: CPUTime
    var messages: Int

    var serverMicrosPerMessage: Double? { server.map { Double($0.totalMicros) / Double(max(messages, 1)) } }
    var clientMicrosPerMessage: Double { Double(client.totalMicros) / Double(max(messages, 1)) }

    /// `,"broker_cpu_us_per_msg":…,"client_cpu_us_per_msg":…` (the broker's is null when it could not be read).
    var jsonMembers: String {
        func split(_ time: CPUTime?) -> String {
            guard let time else { return "null" }
            return "{\"user_us\":\(time.userMicros),\"sys_us\":\(time.sysMicros)}"
        }
        return ",\"broker_cpu_us_per_msg\":\(serverMicrosPerMessage.map { format($0, 2) } ?? "null")"
            + ",\"client_cpu_us_per_msg\":\(format(clientMicrosPerMessage, 2))"
            + ",\"broker_cpu\":\(split(server)),\"client_cpu\":\(split(client))"
    }

    /// `CPU per message (us): broker 18.20 (user 9.10, sys 9.10)  client 25.00 (user …, sys …)`.
    var summary: String {
        func perMessage(_ time: CPUTime) -> String {
            let n = Double(max(messages, 1))
            return "\(format(Double(time.totalMicros) / n, 2)) (user \(format(Double(time.userMicros) / n, 2)), "
                + "sys \(format(Double(time.sysMicros) / n, 2)))"
        }
        return "CPU per message (us): broker \(server.map(perMessage) ?? "unknown")  client \(perMessage(client))"
    }
}

/// Samples the server's and this process's CPU around a measured window.
struct CPUMeter: Sendable {
    let source: ServerCPUSource?
    private var serverStart: CPUTime?
    private var clientStart = CPUTime.ofSelf()

    static func start(_ source: ServerCPUSource?) async -> CPUMeter {
        var meter = CPUMeter(source: source)
        meter.serverStart = await source?.sample()
        meter.clientStart = CPUTime.ofSelf()
        return meter
    }

    private init(source: ServerCPUSource?) { self.source = source }

    func finish(messages: Int) async -> CPUPerMessage {
        let client = CPUTime.ofSelf().since(clientStart)
        var server: CPUTime?
        if let serverStart, let end = await source?.sample() { server = end.since(serverStart) }
        return CPUPerMessage(server: server, client: client, messages: messages)
    }
}
