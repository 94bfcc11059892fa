#if canImport(Glibc)
import Glibc
#endif
import Client
import Common

/// `mqcluster`'s operations on one conf set: `up`, `down`, `status`, `logs`. Output goes through `say`, one line
/// at a time, so the executable prints it and a test reads it.
public struct ClusterControl: Sendable {
    public var confSet: ConfSet
    public var run: RunDirectory
    /// Where `mqnamesrv` and `mqbroker` are (by default the directory `mqcluster` itself is in).
    public var binDirectory: String
    public var say: @Sendable (String) -> Void

    public init(confSet: ConfSet, run: RunDirectory, binDirectory: String, say: @escaping @Sendable (String) -> Void) {
        self.confSet = confSet
        self.run = run
        self.binDirectory = binDirectory
        self.say = say
    }

    func binary(_ role: ClusterRole) -> String { binDirectory + "/" + role.executable }

    /// Starts every NameServer, then every broker, each detached with a pid file and a log file, and returns once
    /// every NameServer answers, every broker answers and every NameServer lists every broker (a DLedger group: with
    /// an elected master) — or throws, having stopped what it started, when `timeoutSeconds` pass first or a role
    /// exits (its log's last lines in the error).
    /// - Throws: `ClusterError` for a bad conf file (file, line, key), a role still running, a port in use, a role
    ///   that died or did not answer in time.
    public func up(timeoutSeconds: Int) async throws(ClusterError) {
        try preflight()
        try run.create()
        let deadline = uptimeNanos() + UInt64(timeoutSeconds) * 1_000_000_000
        var started: [(role: ClusterRole, pid: pid_t)] = []
        let admin = Admin(namesrvAddr: confSet.namesrvAddr, timeoutMillis: 1_000)
        let each = confSet.nameServers.map { Admin(namesrvAddr: $0.address, timeoutMillis: 1_000) }
        do {
            for role in confSet.nameServers { started.append((role, try start(role))) }
            try await waitUntil(deadline, started, "NameServers answer") { await nameServersAnswer(each) }
            // Masters (and DLedger members) first: a slave learns its master's HA address from its first registration.
            let masters = confSet.brokers.filter { $0.brokerRole != "SLAVE" }
            for role in masters { started.append((role, try start(role))) }
            try await waitUntil(deadline, started, "masters answer and are registered with every NameServer") {
                await brokersRegistered(masters, admin, each)
            }
            for role in confSet.brokers where role.brokerRole == "SLAVE" { started.append((role, try start(role))) }
            try await waitUntil(deadline, started, "brokers are registered with every NameServer and slaves replicate") {
                guard await brokersRegistered(confSet.brokers, admin, each) else { return false }
                return await slavesConnected(admin)
            }
        } catch {
            for one in each + [admin] { await one.shutdown() }
            say("mqcluster: \(error.description)")
            let running = started.filter { ClusterProcess.isRunning($0.pid, executable: $0.role.executable) }
            for gone in started where !running.contains(where: { $0.pid == gone.pid }) { run.removePID(gone.role) }
            say("mqcluster: stopping the \(running.count) role(s) started and still running")
            await stop(running.map { ($0.role, $0.pid) }, timeoutSeconds: 15)
            throw ClusterError("\(confSet.name) did not come up")
        }
        say("mqcluster: \(confSet.name) is up (run directory \(run.path))")
        await printClusterList(admin)
        for one in each + [admin] { await one.shutdown() }
    }

    /// Everything checked before anything starts: each file through its own binary's `-p` (a bad value or an unknown
    /// key stops us, naming file, line and key), no role already running (a stale pid file is said and removed), every
    /// port free.
    func preflight() throws(ClusterError) {
        for role in confSet.roles {
            guard access(binary(role), X_OK) == 0 else {
                throw ClusterError("\(binary(role)) not found or not executable (swift build; or --bin-dir)")
            }
            guard access(role.file, R_OK) == 0 else { throw ClusterError("\(role.file): cannot read") }
            let checked = try ClusterProcess.run([binary(role), "-c", absolutePath(role.file), "-p"], directory: "/")
            let complaints = checked.output.split(separator: "\n").filter { $0.contains("unknown key") || checked.status != 0 }
            guard checked.status == 0 && complaints.isEmpty else {
                // mqbroker only warns about an unknown key; a conf set with one (a typo, most likely) is refused.
                let reasons = complaints.map {
                    String($0).replacingOccurrences(of: "\(role.executable): ", with: "").replacingOccurrences(of: "warning: ", with: "")
                        .replacingOccurrences(of: ", ignored", with: " (a typo? mqcluster refuses unknown keys)")
                }
                throw ClusterError(reasons.joined(separator: "\n") + "\nnothing started (\(role.file) is not valid)")
            }
        }
        for role in confSet.roles {
            guard let pid = run.readPID(role) else { continue }
            if ClusterProcess.isRunning(pid, executable: role.executable) {
                throw ClusterError("\(role.name) is already running (pid \(pid), \(run.pidFile(role))); "
                                   + "mqcluster down \(confSet.directory) first")
            }
            say("mqcluster: stale pid file \(run.pidFile(role)) (pid \(pid) is gone); removed")
            run.removePID(role)
        }
        for role in confSet.roles {
            for bound in role.ports where !ClusterProcess.portIsFree(bound.port) {
                throw ClusterError("\(role.file):\(bound.line): \(bound.key): port \(bound.port) is in use by another process; "
                                   + "nothing started")
            }
        }
    }

    func start(_ role: ClusterRole) throws(ClusterError) -> pid_t {
        let pid = try ClusterProcess.spawnDetached([binary(role), "-c", absolutePath(role.file)], directory: run.path,
                                                   logPath: run.logFile(role))
        try run.writePID(pid, for: role)
        say("mqcluster: started \(role.name) (\(role.executable), pid \(pid), \(role.address), log \(run.logFile(role)))")
        return pid
    }

    /// Polls `condition` every 50 ms until it holds; throws when `deadline` passes first or a started role exits.
    func waitUntil(_ deadline: UInt64, _ started: [(role: ClusterRole, pid: pid_t)], _ what: String,
                   _ condition: () async -> Bool) async throws(ClusterError) {
        while true {
            if let dead = started.first(where: { !ClusterProcess.isRunning($0.pid, executable: $0.role.executable) }) {
                let lines = ClusterProcess.tail(run.logFile(dead.role), lines: 20).map { "    " + $0 }
                var status: Int32 = 0
                // Our child until we exit. Its executable is gone from /proc before it becomes a zombie that
                // waitpid can reap, so give the exit up to 2 s to finish.
                var reaped = waitpid(dead.pid, &status, WNOHANG) == dead.pid
                for _ in 0..<200 where !reaped {
                    usleep(10_000)
                    reaped = waitpid(dead.pid, &status, WNOHANG) == dead.pid
                }
                let how = !reaped ? "exited" : status & 0x7F == 0 ? "exited with status \((status >> 8) & 0xFF)" : "was killed by signal \(status & 0x7F)"
                throw ClusterError("\(dead.role.name) (pid \(dead.pid)) \(how) during start-up; the end of "
                                   + "\(run.logFile(dead.role)):\n" + lines.joined(separator: "\n"))
            }
            if await condition() { return }
            guard uptimeNanos() < deadline else {
                throw ClusterError("timed out waiting until the \(what)")
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    func nameServersAnswer(_ each: [Admin]) async -> Bool {
        for one in each where (try? await one.clusterInfo()) == nil { return false }
        return true
    }

    /// Every broker answers GET_BROKER_RUNTIME_INFO and every NameServer lists it (by name and address; a DLedger
    /// group also needs its master, id 0).
    func brokersRegistered(_ brokers: [ClusterRole], _ admin: Admin, _ each: [Admin]) async -> Bool {
        for role in brokers where (try? await admin.brokerRuntimeInfo(role.address)) == nil { return false }
        for one in each {
            let listed = (try? await one.clusterInfo()) ?? []
            for role in brokers {
                let ours = listed.filter { $0.brokerName == role.brokerName }
                guard ours.contains(where: { $0.address == role.address }) else { return false }
                if role.dledgerSelfID != nil && !ours.contains(where: { $0.brokerID == 0 }) { return false }
            }
        }
        return true
    }

    /// Every master of the set with slaves in it sees that many slave connections (GET_BROKER_HA_STATUS).
    func slavesConnected(_ admin: Admin) async -> Bool {
        for master in confSet.brokers where master.isMaster {
            let slaves = confSet.brokers.filter { $0.brokerName == master.brokerName && $0.brokerRole == "SLAVE" }.count
            guard slaves > 0 else { continue }
            guard let ha = try? await admin.haStatus(master.address), ha.haConnectionInfo.count >= slaves else { return false }
        }
        return true
    }

    /// The cluster as `mqadmin clusterList` prints it.
    func printClusterList(_ admin: Admin) async {
        say(pad("#Cluster Name", 18) + pad("#Broker Name", 24) + pad("#BID", 6) + pad("#Addr", 24) + pad("#Version", 12)
            + pad("#InTotalToday", 16) + pad("#OutTotalToday", 16) + "#CommitLogMaxOffset")
        for broker in (try? await admin.clusterInfo()) ?? [] {
            let info = Dictionary((try? await admin.brokerRuntimeInfo(broker.address)) ?? [], uniquingKeysWith: { a, _ in a })
            say(pad(broker.cluster, 18) + pad(broker.brokerName, 24) + pad("\(broker.brokerID)", 6) + pad(broker.address, 24)
                + pad(info["brokerVersionDesc"] ?? "-", 12) + pad(info["msgPutTotalTodayNow"] ?? "-", 16)
                + pad(info["msgGetTotalTodayNow"] ?? "-", 16) + (info["commitLogMaxOffset"] ?? "-"))
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
