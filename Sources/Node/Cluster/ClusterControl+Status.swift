#if canImport(Glibc)
import Glibc
#endif
import Client
import Common

extension ClusterControl {
    /// One line of `status`.
    public struct StatusRow: Sendable {
        public var role = "-"
        public var name: String
        public var address: String
        public var pid = "-"
        public var up = "-"
        /// Messages put and got per second over the sampling interval (`put/get`).
        public var tps = "-"
        public var disk = "-"
        /// A master: its slaves' largest lag in bytes and how many are in sync; a slave: bytes behind its master; a
        /// DLedger follower: entries behind the leader.
        public var haLag = "-"
        /// running, stopped, stale pid file, or not answering.
        public var state = "stopped"
    }

    /// The set's roles as they run now: pid files checked against `/proc`, then GET_BROKER_RUNTIME_INFO taken twice
    /// `intervalMillis` apart (TPS), GET_BROKER_HA_STATUS of the masters, GET_DLEDGER_STATUS of DLedger members, and
    /// the store's size on disk. A role that is down or does not answer has dashes.
    public func status(intervalMillis: Int) async -> [StatusRow] {
        var rows = confSet.roles.map { role in
            var row = StatusRow(name: role.name, address: role.address)
            row.role = role.kind == .nameServer ? "NameServer" : role.brokerRole
            guard let pid = run.readPID(role) else { return row }
            guard ClusterProcess.isRunning(pid, executable: role.executable) else {
                row.state = "stale pid file (pid \(pid) gone)"
                return row
            }
            row.pid = "\(pid)"
            row.state = "running"
            row.up = ClusterProcess.uptimeSeconds(pid).map(formatDuration) ?? "-"
            if let store = run.storeDirectory(role) { row.disk = formatBytes(ClusterProcess.diskUsageBytes(store)) }
            return row
        }
        let admin = Admin(namesrvAddr: confSet.namesrvAddr, timeoutMillis: 1_000)
        let live = confSet.brokers.filter { role in rows.contains { $0.name == role.name && $0.state == "running" } }
        let before = await runtimeInfo(admin, live)
        try? await Task.sleep(for: .milliseconds(intervalMillis))  // the TPS window, not a wait for anything
        let after = await runtimeInfo(admin, live)
        for index in rows.indices where rows[index].state == "running" {
            let role = confSet.roles[index]
            if role.kind == .nameServer {
                let one = Admin(namesrvAddr: role.address, timeoutMillis: 1_000)
                if (try? await one.clusterInfo()) == nil { rows[index].state = "running, not answering" }
                await one.shutdown()
                continue
            }
            guard let first = before[role.name], let second = after[role.name] else {
                rows[index].state = "running, not answering"
                continue
            }
            rows[index].role = second["brokerRole"] ?? role.brokerRole
            rows[index].tps = rate(first, second, "msgPutTotalTodayNow", intervalMillis) + "/"
                + rate(first, second, "msgGetTotalTodayNow", intervalMillis)
        }
        await fillReplication(&rows, admin, after)
        await admin.shutdown()
        return rows
    }

    func runtimeInfo(_ admin: Admin, _ roles: [ClusterRole]) async -> [String: [String: String]] {
        var tables: [String: [String: String]] = [:]
        for role in roles {
            guard let table = try? await admin.brokerRuntimeInfo(role.address) else { continue }
            tables[role.name] = Dictionary(table, uniquingKeysWith: { first, _ in first })
        }
        return tables
    }

    func rate(_ first: [String: String], _ second: [String: String], _ key: String, _ intervalMillis: Int) -> String {
        guard let start = Int64(first[key] ?? ""), let end = Int64(second[key] ?? "") else { return "-" }
        return "\(max(0, end - start) * 1000 / Int64(max(1, intervalMillis)))"
    }

    /// The HA lag column: masters from GET_BROKER_HA_STATUS, slaves against their master's log end, DLedger members
    /// from the leader's GET_DLEDGER_STATUS (which also names each member's role).
    func fillReplication(_ rows: inout [StatusRow], _ admin: Admin, _ runtime: [String: [String: String]]) async {
        var dledger: [String: DLedgerStatusBody] = [:]
        for role in confSet.brokers where role.dledgerSelfID != nil && runtime[role.name] != nil {
            dledger[role.name] = try? await admin.dledgerStatus(role.address, timeoutMillis: 1_000)
        }
        for index in rows.indices {
            let role = confSet.roles[index]
            guard role.kind == .broker, let table = runtime[role.name] else { continue }
            if let selfID = role.dledgerSelfID {
                guard let status = dledger[role.name] else { continue }
                rows[index].role = "DLEDGER-" + status.role.uppercased()
                let leader = dledger.values.first { $0.role == "leader" && $0.group == status.group }
                if status.role == "leader" {
                    rows[index].haLag = "max \(status.members.compactMap(\.lag).max() ?? 0) entries"
                } else if let lag = leader?.members.first(where: { $0.name == selfID })?.lag {
                    rows[index].haLag = "\(lag) entries"
                }
            } else if table["brokerRole"] == "SLAVE" {
                let master = confSet.brokers.first { $0.brokerName == role.brokerName && $0.isMaster }
                if let masterEnd = master.flatMap({ runtime[$0.name]?["commitLogMaxOffset"] }).flatMap({ Int64($0) }),
                   let ownEnd = Int64(table["commitLogMaxOffset"] ?? "") {
                    rows[index].haLag = formatBytes(UInt64(max(0, masterEnd - ownEnd)))
                }
            } else if let ha = try? await admin.haStatus(role.address) {
                let worst = ha.haConnectionInfo.map(\.diff).max() ?? 0
                rows[index].haLag = ha.haConnectionInfo.isEmpty ? "no slave"
                    : "\(formatBytes(UInt64(max(0, worst)))) (\(ha.inSyncSlaveNums)/\(ha.haConnectionInfo.count) in sync)"
            }
        }
    }

    /// `status`'s table, one line per role.
    public static func render(_ rows: [StatusRow]) -> [String] {
        let header = ["#Role", "#Name", "#Addr", "#PID", "#Up", "#TPS put/get", "#Disk", "#HA Lag", "#State"]
        let cells = rows.map { [$0.role, $0.name, $0.address, $0.pid, $0.up, $0.tps, $0.disk, $0.haLag, $0.state] }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max()! + 2 }
        return ([header] + cells).map { line in
            line.indices.map { $0 == line.count - 1 ? line[$0] : pad(line[$0], widths[$0]) }.joined()
        }
    }
}

func formatDuration(_ seconds: Int) -> String {
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3_600 { return "\(seconds / 60)m\(two(seconds % 60))s" }
    if seconds < 86_400 { return "\(seconds / 3_600)h\(two(seconds / 60 % 60))m" }
    return "\(seconds / 86_400)d\(two(seconds / 3_600 % 24))h"
}

func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

func formatBytes(_ bytes: UInt64) -> String {
    if bytes < 1 << 10 { return "\(bytes) B" }
    let units = ["KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}
