/// What each mode promises about acknowledged messages, with and without power cuts among the faults. A power cut
/// (`FaultKind.power`) loses what a node had not fsynced: the promise then rests on what was synced before the
/// acknowledgement, which the flush mode decides.
extension ChaosGuarantee {
    static let processFaults = "kill, suspend and partition"

    /// A DLedger group of three. Its Raft log is fdatasynced before each vote and acknowledgement under SYNC_FLUSH
    /// (`DLedgerSettings.syncEachWrite`); under ASYNC_FLUSH every 500 ms, so a power cut takes a member's latest
    /// entries and votes.
    static func dledger(syncFlush: Bool, power: Bool) -> ChaosGuarantee {
        let base = "DLedger: a send is acknowledged once a majority (2 of 3) has it in its log, so no acknowledged message "
            + "is lost while a majority's stores survive; \(processFaults) of any one member (the leader too) keep that."
        if syncFlush {
            return ChaosGuarantee(claim: base + " SYNC_FLUSH: each member fdatasyncs its Raft log before the vote or acknowledgement "
                                  + "it carries leaves, so a member whose power is cut keeps everything it acknowledged: "
                                  + "power cuts of one member at a time keep the promise too.",
                                  promisesNoLoss: true, everyLogHoldsAll: true)
        }
        guard power else { return ChaosGuarantee(claim: base + " " + asyncFlushNote, promisesNoLoss: true, everyLogHoldsAll: true) }
        return ChaosGuarantee(claim: base + " ASYNC_FLUSH: a member syncs its Raft log every flushIntervalCommitLog (500 ms), so a "
                              + "power cut takes its unsynced entries and latest votes with it; the other two usually still hold "
                              + "every acknowledged entry, but that is not promised: what was lost is reported, not judged.",
                              promisesNoLoss: false, everyLogHoldsAll: false)
    }

    /// A master and its slave (or a broker alone). Under SYNC_FLUSH the master fdatasyncs a message before it is
    /// acknowledged, so its power cut keeps it; under ASYNC_FLUSH it may not, and although a SYNC_MASTER's slave had the
    /// message, the restarted master reuses its offsets and serves the reads.
    static func masterSlave(_ replication: ReplicationMode, syncFlush: Bool, power: Bool) -> ChaosGuarantee {
        var claim: String
        var everyLogHoldsAll = true
        switch replication {
        case .sync:
            claim = "SYNC_MASTER: a send is acknowledged once the slave has it too, and the master restarts on its own store, "
                + "so no acknowledged message is lost under \(processFaults) of either node."
        case .async:
            claim = "ASYNC_MASTER: a send is acknowledged once the master stored it; the slave copies behind, so the unreplicated "
                + "tail is lost if the master's store is lost. \(processFaults.prefix(1).uppercased() + processFaults.dropFirst()) "
                + "keep the master's store (it restarts on it), so no acknowledged message should be lost under them."
            everyLogHoldsAll = false
        case .none:
            claim = "One broker: no acknowledged message lost while its store survives."
        case .dledger:
            // bench chaos runs a DLedger group as `DLedgerBenchGroup` itself; a DLedger cell's group says the same.
            return dledger(syncFlush: syncFlush, power: power)
        }
        if syncFlush {
            let survives = power ? " (with power cuts too: a slave that lost its unsynced tail copies it from the master again)" : ""
            return ChaosGuarantee(claim: claim + " SYNC_FLUSH: the master fdatasyncs every message before it is acknowledged, so it "
                                  + "survives a power cut of the master\(survives).", promisesNoLoss: true, everyLogHoldsAll: everyLogHoldsAll)
        }
        guard power else { return ChaosGuarantee(claim: claim + " " + asyncFlushNote, promisesNoLoss: true, everyLogHoldsAll: everyLogHoldsAll) }
        return ChaosGuarantee(claim: claim + " ASYNC_FLUSH: a power cut of the master takes its unsynced tail, acknowledged messages "
                              + "included; its slave may still hold them (each node's own log says), but the restarted master writes "
                              + "new messages at those offsets and serves the reads, so they can be lost: not promised under power "
                              + "cuts, what was lost is reported, not judged.",
                              promisesNoLoss: false, everyLogHoldsAll: false)
    }

    static let asyncFlushNote = "ASYNC_FLUSH: a killed process's writes survive in the page cache, so process faults lose nothing; "
        + "a power cut could (the `power` fault injects one)."
}
