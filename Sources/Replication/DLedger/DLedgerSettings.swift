import CommitLog
import Raft

/// One member of a DLedger group as `dLegerPeers` names it: `n0-127.0.0.1:40911`.
public struct DLedgerPeer: Sendable, Equatable, CustomStringConvertible {
    /// The name before the first `-` (`n0`).
    public var name: String
    /// The Raft id: the name's numeric suffix when every name has a distinct one (`n0` → 0, as RocketMQ derives
    /// slave broker ids), else the position among the names sorted.
    public var id: NodeID
    /// `host:port` of the member's DLedger port (not its `listenPort`).
    public var address: String

    public init(name: String, id: NodeID, address: String) {
        self.name = name
        self.id = id
        self.address = address
    }

    public var description: String { "\(name)-\(address)" }
}

/// Everything the DLedger driver needs, as one immutable value. `broker.conf` spells the group keys
/// `dLegerGroup`, `dLegerPeers`, `dLegerSelfId`, `preferredLeaderId` (the `DLedger` spellings too); the timers
/// and limits are ours (RocketMQ's DLedger does not let `broker.conf` set them).
public struct DLedgerSettings: Sendable {
    /// `dLegerGroup` (default: the broker name). Messages from another group are dropped.
    public var group: String = "default"
    /// `dLegerPeers`, in the order given.
    public var peers: [DLedgerPeer] = []
    /// `dLegerSelfId`: this member's name.
    public var selfName: String = ""
    /// `preferredLeaderId`: the member that takes leadership back when it is healthy and caught up.
    public var preferredLeaderName: String?
    /// The driver's clock (`dLegerTickMillis`, ours): one Raft tick. Elapsed ticks are counted on the monotonic
    /// clock, so a process that was stopped (SIGSTOP) catches up at once and a stale leader steps down.
    public var tickMillis: Int = 10
    /// Shortest election timeout in ticks (`dLegerElectionTicks`, ours): a follower campaigns after
    /// `electionTicks ..< 2 × electionTicks` ticks without its leader (400-800 ms by default); a leader that
    /// heard no quorum that long steps down.
    public var electionTicks: Int = 40
    /// Heartbeat period in ticks (`dLegerHeartbeatTicks`, ours): 50 ms by default.
    public var heartbeatTicks: Int = 5
    /// Whether every write of the Raft log is made durable (fdatasync) before the votes and acknowledgements it
    /// carries leave (`flushDiskType=SYNC_FLUSH` in DLedger mode). Otherwise the log is written to the page
    /// cache per batch and synced every `asyncSyncIntervalMillis`: a killed process loses nothing, a power loss
    /// may (RocketMQ's DLedger never syncs on the append path).
    public var syncEachWrite: Bool = false
    /// How often the Raft log is synced when `syncEachWrite` is false (`flushIntervalCommitLog`).
    public var asyncSyncIntervalMillis: Int = 500
    /// How long a put waits for its entry to commit before IN_SYNC_REPLICAS_NOT_ENOUGH (`dLegerCommitTimeoutMillis`,
    /// ours; DLedger's `maxWaitAckTimeMs` is 2,500).
    public var commitTimeoutMillis: Int = 3_000
    /// Un-acknowledged append messages per follower, and bytes per message (ours).
    public var inflightAppendsMax: Int = 256
    public var appendBytesMax: Int = 256 << 10
    /// Bytes proposed but not committed before puts are refused (DLedger's LEADER_PENDING_FULL; ours).
    public var uncommittedBytesMax: Int = 64 << 20
    /// Puts waiting for a commit at once (ours); past it puts are refused.
    public var commitWaitersMax: Int = 65_536
    /// Raft messages received and not yet stepped (ours); past it new ones are dropped (Raft resends).
    public var inboxMessagesMax: Int = 65_536
    /// Applied entries kept in memory before the driver compacts (ours): when more than this many entries, or
    /// bytes, are applied and still held, the log drops them through the group's compactable index (entries every
    /// member holds). Unapplied entries are bounded by `uncommittedBytesMax` on a leader.
    public var raftLogKeepEntriesMax: Int = 100_000
    public var raftLogKeepBytesMax: Int = 64 << 20
    /// The Raft log file is rewritten without its compacted entries once it reaches this size (ours).
    public var raftLogFileBytesMax: Int = 256 << 20
    /// Where the Raft log lives: `<storePathRootDir>/dledger-<selfId>`.
    public var directory: String = ""
    public var fileIO: FileIO = .system

    public init() {}

    /// This member.
    public var me: DLedgerPeer? { peers.first { $0.name == selfName } }

    /// The member called `name`.
    public func peer(named name: String) -> DLedgerPeer? { peers.first { $0.name == name } }
    public func peer(_ id: NodeID) -> DLedgerPeer? { peers.first { $0.id == id } }

    /// Parses `dLegerPeers`: `n0-host:port;n1-host:port;...`.
    /// - Throws: `StoreError(.badConfig)` naming the bad part.
    public static func parsePeers(_ text: String) throws(StoreError) -> [DLedgerPeer] {
        var named: [(String, String)] = []
        for part in text.split(separator: ";") where !part.allSatisfy({ $0 == " " }) {
            let trimmed = String(part.drop { $0 == " " })
            guard let dash = trimmed.firstIndex(of: "-"), dash != trimmed.startIndex else {
                throw StoreError(.badConfig, "dLegerPeers: \"\(trimmed)\" must be id-host:port (n0-127.0.0.1:40911)")
            }
            let name = String(trimmed[..<dash])
            let address = String(trimmed[trimmed.index(after: dash)...])
            guard let colon = address.lastIndex(of: ":"), Int(address[address.index(after: colon)...]) != nil else {
                throw StoreError(.badConfig, "dLegerPeers: \"\(address)\" of \(name) must be host:port")
            }
            guard !named.contains(where: { $0.0 == name }) else { throw StoreError(.badConfig, "dLegerPeers: \(name) appears twice") }
            named.append((name, address))
        }
        guard !named.isEmpty, named.count <= 9 else {
            throw StoreError(.badConfig, "dLegerPeers: \(named.count) members; 1 to 9 are supported")
        }
        let suffixes = named.map { name, _ in UInt32(String(name.reversed().prefix { $0.isNumber }.reversed())) }
        let numbered = suffixes.allSatisfy { $0 != nil } && Set(suffixes.compactMap { $0 }).count == named.count
        let sorted = named.map(\.0).sorted()
        return named.enumerated().map { index, peer in
            let id = numbered ? suffixes[index]! : UInt32(sorted.firstIndex(of: peer.0)!)
            return DLedgerPeer(name: peer.0, id: NodeID(id), address: peer.1)
        }
    }

    /// Checks the combination once and builds the core's settings.
    /// - Throws: `StoreError(.badConfig)` naming the key.
    public func validated() throws(StoreError) -> (DLedgerSettings, RaftConfig) {
        guard let me else {
            throw StoreError(.badConfig, "dLegerSelfId \"\(selfName)\" is not one of dLegerPeers (\(peers.map(\.name)))")
        }
        var preferred: NodeID?
        if let preferredLeaderName, !preferredLeaderName.isEmpty {
            guard let peer = peer(named: preferredLeaderName) else {
                throw StoreError(.badConfig, "preferredLeaderId \"\(preferredLeaderName)\" is not one of dLegerPeers")
            }
            preferred = peer.id
        }
        guard (1...10_000).contains(tickMillis) else { throw StoreError(.badConfig, "dLegerTickMillis must be 1-10000") }
        guard commitTimeoutMillis > 0, commitWaitersMax > 0, inboxMessagesMax > 0, asyncSyncIntervalMillis > 0,
              raftLogKeepEntriesMax > 0, raftLogKeepBytesMax > 0, raftLogFileBytesMax > 0 else {
            throw StoreError(.badConfig, "DLedger timeouts and limits must be positive")
        }
        do {
            let config = try RaftConfig(
                id: me.id, members: peers.map(\.id), electionTicks: electionTicks, heartbeatTicks: heartbeatTicks,
                inflightAppendsMax: inflightAppendsMax, appendBytesMax: appendBytesMax, uncommittedBytesMax: uncommittedBytesMax,
                preferredLeader: preferred)
            return (self, config)
        } catch {
            throw StoreError(.badConfig, "DLedger: \(error)")
        }
    }

    var tickNanos: UInt64 { UInt64(tickMillis) * 1_000_000 }
    var commitTimeoutNanos: UInt64 { UInt64(commitTimeoutMillis) * 1_000_000 }
}
