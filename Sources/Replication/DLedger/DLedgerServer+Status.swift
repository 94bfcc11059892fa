import CommitLog
import Raft

/// One member's view of its group, for `mqadmin dledgerStatus`.
public struct DLedgerStatus: Sendable, Equatable {
    /// Another member as the leader sees it (match index and lag known only on the leader).
    public struct Member: Sendable, Equatable {
        public var name: String
        public var address: String
        public var matchIndex: UInt64?
        public var lag: Int64?
    }

    public var group: String
    public var selfName: String
    public var role: String
    public var term: UInt64
    public var leaderName: String?
    /// Highest index known committed, last index written to the Raft log, last applied to the commit log.
    public var commitIndex: UInt64
    public var lastIndex: UInt64
    public var appliedIndex: UInt64
    /// The last entry compacted from memory, and from the Raft log file (0: none).
    public var compactedIndex: UInt64 = 0
    public var fileCompactedIndex: UInt64 = 0
    /// Takes writes (serves as master).
    public var writable: Bool
    public var members: [Member]
}

extension DLedgerServer {
    /// This member serves as master now: its gate is open and its driver ran within two heartbeats (a process
    /// that was stopped and wakes up must not register as master before its driver noticed the time that passed).
    public var isWritableNow: Bool {
        guard gateTerm.load(ordering: .acquiring) != 0 else { return false }
        let last = lastCycleNanos.load(ordering: .acquiring)
        let now = monotonicNanos()
        return now < last || now - last < 2 * UInt64(settings.heartbeatTicks) * settings.tickNanos + 50_000_000
    }

    /// The slave broker id this member registers with when it does not lead: its Raft id + 1 (`n0` → 1).
    public var slaveBrokerID: Int64 { Int64(me.id.rawValue) + 1 }

    /// A snapshot of this member's state. **Thread:** any.
    public func status() -> DLedgerStatus {
        let role = publishedRole.withLock { $0 }
        return core.withLock { core in
            let members = settings.peers.filter { $0.id != me.id }.map { peer -> DLedgerStatus.Member in
                let progress = core.replicationState(of: peer.id)
                return DLedgerStatus.Member(name: peer.name, address: peer.address, matchIndex: progress?.match.rawValue,
                                            lag: progress.map { Int64(core.lastIndex.rawValue) - Int64($0.match.rawValue) })
            }
            var status = DLedgerStatus(
                group: settings.group, selfName: me.name, role: "\(core.role)", term: core.term.rawValue,
                leaderName: core.leader.flatMap { settings.peer($0)?.name }, commitIndex: core.commitIndex.rawValue,
                lastIndex: core.lastIndex.rawValue, appliedIndex: appliedIndexAtomic.load(ordering: .acquiring),
                writable: role.writable && isWritableNow, members: members)
            status.compactedIndex = core.snapshotIndex.rawValue
            status.fileCompactedIndex = fileCompactedIndex.load(ordering: .acquiring)
            return status
        }
    }

    /// Hands leadership to the member called `name` (this member must lead). Puts are refused while the target
    /// catches up; it then campaigns at once. Watch `status()` for the outcome.
    /// - Returns: nil when the transfer started (or `name` leads already), else why not.
    public func transferLeadership(to name: String) -> String? {
        guard let target = settings.peer(named: name) else {
            return "\(name) is not a member of \(settings.group) (\(settings.peers.map(\.name).joined(separator: ", ")))"
        }
        let result = core.withLock { $0.transferLeadership(to: target.id) }
        signalDriver()
        switch result {
        case .started, .alreadyDone: return nil
        case .rejected(let reason): return reason
        }
    }
}
