#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore
import NIOPosix
import Raft
import Replication
import Synchronization
import Testing
import TestSupport

/// Delivers Raft messages between in-process members through the real codec, and cuts members off on demand
/// (both directions).
final class LoopbackTransport: DLedgerTransport, Sendable {
    private let members = Mutex<[String: DLedgerServer]>([:])
    private let isolated = Mutex<Set<String>>([])

    func attach(_ server: DLedgerServer) { members.withLock { $0[server.me.address] = server } }
    func detach(_ address: String) { _ = members.withLock { $0.removeValue(forKey: address) } }
    func isolate(_ address: String) { _ = isolated.withLock { $0.insert(address) } }
    func heal() { isolated.withLock { $0.removeAll() } }

    func send(_ messages: [RaftMessage], group: String, to peer: DLedgerPeer) {
        guard let source = messages.first?.source else { return }
        let (target, cut) = members.withLock { members -> (DLedgerServer?, Bool) in
            let sourceAddress = members.values.first { $0.me.id == source }?.me.address ?? ""
            let cut = isolated.withLock { $0.contains(peer.address) || $0.contains(sourceAddress) }
            return (members[peer.address], cut)
        }
        guard let target, !cut else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        RaftMessageCodec.encode(messages, group: group, into: &buffer)
        try? target.receive(buffer)
    }
}

/// One in-process member: its store, server and put pipeline.
final class Member {
    let name: String
    let directory: TemporaryDirectory
    let transport: LoopbackTransport
    let peers: [DLedgerPeer]
    var store: MessageStore?
    var server: DLedgerServer?
    var pipeline: PutPipeline?
    /// Changes the settings each `open` uses.
    var tune: (inout DLedgerSettings) -> Void = { _ in }

    init(name: String, peers: [DLedgerPeer], transport: LoopbackTransport,
         tune: @escaping (inout DLedgerSettings) -> Void = { _ in }) throws {
        self.name = name
        self.peers = peers
        self.transport = transport
        self.tune = tune
        directory = TemporaryDirectory("dledger-\(name)")
        try open()
    }

    var address: String { peers.first { $0.name == name }!.address }

    func open() throws {
        var settings = DLedgerSettings()
        settings.group = "G"
        settings.peers = peers
        settings.selfName = name
        settings.tickMillis = 10
        settings.electionTicks = 15
        settings.heartbeatTicks = 3
        settings.commitTimeoutMillis = 1_500
        settings.directory = directory.path + "/dledger-\(name)"
        tune(&settings)
        var config = storeConfig(directory.path)
        // A Raft log file is compacted only through what the commit log flushed: flush it all often, not every 10 s.
        config.commitLog.flushCommitLogThoroughIntervalMillis = 200
        let store = try MessageStore(config: config)
        let server = try DLedgerServer(settings: settings, store: store, transport: transport, log: { _ in })
        pipeline = PutPipeline(store: store, dledger: server)
        transport.attach(server)
        server.start()
        self.store = store
        self.server = server
    }

    /// Stops the member as a crash would leave the Raft log (its writes are in the page cache either way).
    func close() {
        transport.detach(address)
        server?.close()
        store?.close()
        server = nil
        pipeline = nil
        store = nil
    }

    var writable: Bool { server?.status().writable ?? false }

    /// Puts one message through the pipeline and waits (bounded) for its answer.
    func put(_ body: String, group: EventLoopGroup) -> PutMessageStatus {
        guard let pipeline else { return .serviceNotAvailable }
        let topic = Array("DL".utf8)
        let bytes = Array(body.utf8)
        let properties = Array("KEYS\u{1}\(body)\u{2}".utf8)
        let outcome = topic.withUnsafeBytes { t in
            bytes.withUnsafeBytes { b in
                properties.withUnsafeBytes { p in
                    pipeline.put(MessageView(topic: t, body: b, properties: p, queueID: 0, bornTimestamp: 1), on: group.next())
                }
            }
        }
        switch outcome {
        case .failed(let failure): return failure.status
        case .done(_, let status): return status
        case .pending(_, let future): return (try? future.wait()) ?? .unknownError
        case .queued: return .unknownError  // a promise route never answers through a queue
        }
    }

    /// Bodies of every record in the commit log, in log order.
    func bodies() -> [String] {
        guard let log = store?.commitLog else { return [] }
        var bodies: [String] = []
        _ = try? log.forEachRecord(from: log.minOffset) { record in
            bodies.append(String(decoding: record.body, as: UTF8.self))
            return true
        }
        return bodies
    }
}

/// A group of three in-process members.
func makeGroup(_ transport: LoopbackTransport, tune: @escaping (inout DLedgerSettings) -> Void = { _ in }) throws -> [Member] {
    let peers = try DLedgerSettings.parsePeers("n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3")
    return try peers.map { try Member(name: $0.name, peers: peers, transport: transport, tune: tune) }
}

/// Puts `body` on the group's writable leader and returns the body acknowledged. When a put is not acknowledged
/// (leadership moved under a loaded machine: an election timeout is 150 ms here) it is retried on the leader then
/// writable under a new body, `body~N`, since a put that timed out may still commit; nil after `attempts`.
func putOnLeader(_ members: [Member], _ body: String, group: EventLoopGroup, attempts: Int = 5) -> String? {
    for attempt in 0..<attempts {
        let sent = attempt == 0 ? body : "\(body)~\(attempt)"
        guard let leader = writableLeader(members) else { return nil }
        if leader.put(sent, group: group) == .putOK { return sent }
    }
    return nil
}

/// The one member that takes writes, once there is exactly one (bounded wait).
func writableLeader(_ members: [Member], seconds: Double = 20) -> Member? {
    var leader: Member?
    _ = eventually(seconds: seconds) {
        let writable = members.filter(\.writable)
        leader = writable.count == 1 ? writable[0] : nil
        return leader != nil
    }
    return leader
}
