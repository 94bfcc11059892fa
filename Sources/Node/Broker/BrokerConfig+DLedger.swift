import CommitLog
import Common
import Observability
import Replication

extension BrokerConfig {
    /// The DLedger keys of `broker.conf`, in RocketMQ's historical spelling (`enableDLegerCommitLog`, `dLegerGroup`,
    /// `dLegerPeers`, `dLegerSelfId`) and the corrected one (`DLedger`), plus our timers; false when unknown.
    mutating func setDLedgerKey(_ key: String, _ value: String) throws(PropertiesFile.ConfigError) -> Bool {
        func integer(_ range: ClosedRange<Int64>) throws(PropertiesFile.ConfigError) -> Int { Int(try PropertiesFile.integer(value, in: range)) }
        switch key.replacingDLedgerSpelling {
        case "enableDLegerCommitLog":
            guard value == "true" || value == "false" else {
                throw PropertiesFile.ConfigError(description: "must be true or false, not \"\(value)\"")
            }
            dledgerEnabled = value == "true"
        case "dLegerGroup": dledger.group = value
        case "dLegerPeers":
            do { dledger.peers = try DLedgerSettings.parsePeers(value) } catch {
                throw PropertiesFile.ConfigError(description: error.message)
            }
        case "dLegerSelfId": dledger.selfName = value
        case "preferredLeaderId", "preferredLeaderIds":
            dledger.preferredLeaderName = value.split(separator: ";").first.map(String.init)
        case "dLegerTickMillis": dledger.tickMillis = try integer(1...10_000)
        case "dLegerElectionTicks": dledger.electionTicks = try integer(2...1_000_000)
        case "dLegerHeartbeatTicks": dledger.heartbeatTicks = try integer(1...1_000_000)
        case "dLegerCommitTimeoutMillis": dledger.commitTimeoutMillis = try integer(1...600_000)
        default:
            do { return try metrics.set(key, value) } catch { throw PropertiesFile.ConfigError(description: error.description) }
        }
        return true
    }

    /// DLedger mode: the group decides the role, so `brokerRole` and `brokerId` are ignored; the Raft log lives
    /// in `<storePathRootDir>/dledger-<selfId>` and follows `flushDiskType` (SYNC_FLUSH: fdatasync before every
    /// acknowledgement), while the commit log, rebuilt from the Raft log after a crash, flushes asynchronously.
    mutating func settleDLedger() throws(PropertiesFile.ConfigError) {
        if dledger.group == "default" { dledger.group = brokerName }
        dledger.syncEachWrite = store.commitLog.flushDiskType == .syncFlush
        dledger.asyncSyncIntervalMillis = store.commitLog.flushIntervalCommitLogMillis
        store.commitLog.flushDiskType = .asyncFlush
        dledger.directory = store.storePathRootDir + "/dledger-" + dledger.selfName
        guard store.commitLog.ioPath == .mmap else {
            throw PropertiesFile.ConfigError(description: "enableDLegerCommitLog=true needs ioPath=mmap (followers compare the leader's "
                                             + "records through the mapping)")
        }
        do { _ = try dledger.validated() } catch {
            throw PropertiesFile.ConfigError(description: error.message)
        }
    }
}

extension String {
    /// The key in RocketMQ's spelling (`dLedgerPeers` → `dLegerPeers`, `enableDLedgerCommitLog` → `enableDLegerCommitLog`).
    var replacingDLedgerSpelling: String {
        if hasPrefix("dLedger") { return "dLeger" + dropFirst("dLedger".count) }
        if self == "enableDLedgerCommitLog" { return "enableDLegerCommitLog" }
        return self
    }
}
