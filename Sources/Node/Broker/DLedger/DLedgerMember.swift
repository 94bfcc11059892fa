import CommitLog
import Common
import IndexFile
import NIOCore
import Remoting
import Replication
import Synchronization

/// A broker's DLedger side: the member (`DLedgerServer`), its peer port and transport, the copy of the leader's
/// tables (topics, offsets, delay offsets, subscription groups, as a slave copies its master's), and what the
/// broker does when the member's role changes: a member that takes writes serves as master (brokerId 0, delayed
/// messages delivered), any other as slave (brokerId = its Raft id + 1); each change re-registers with every
/// NameServer at once.
final class DLedgerMember: Sendable {
    let server: DLedgerServer
    let transport: DLedgerPeerTransport
    let peerServer: RemotingServer
    let synchronize: SlaveSynchronize
    let services: BrokerServices
    /// Role changes arriving while the broker reacts to one collapse into one more reaction.
    private let reacting = CoalescedTask()
    /// A follower's search for its master, while it runs.
    private let lookup = Mutex<Task<Void, Never>?>(nil)

    /// The member and its port, before the broker's services exist (the put pipeline needs the member).
    /// - Throws: `StoreError` for bad settings or a store DLedger cannot use; NIO errors when the port is taken.
    static func open(config: BrokerConfig, store: MessageStore, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void)
        async throws -> (DLedgerServer, DLedgerPeerTransport, RemotingServer) {
        let transport = DLedgerPeerTransport(group: group, log: log)
        let server = try DLedgerServer(settings: config.dledger, store: store, transport: transport, log: log)
        let address = server.me.address
        let port = Int(address[address.index(after: address.lastIndex(of: ":")!)...])!
        var limits = ConnectionLimits()
        limits.maxFrameBytes = DLedgerPeerTransport.frameBytesMax
        limits.pendingFrameBytesMax = 4 * DLedgerPeerTransport.frameBytesMax
        let peerServer = try await RemotingServer(host: "0.0.0.0", port: port, group: group,
                                                  processor: DLedgerPeerProcessor(server: server, log: log), limits: limits, log: log)
        return (server, transport, peerServer)
    }

    init(parts: (DLedgerServer, DLedgerPeerTransport, RemotingServer), services: BrokerServices,
         group: EventLoopGroup) {
        (server, transport, peerServer) = parts
        self.services = services
        synchronize = SlaveSynchronize(services: services, haClient: nil, group: group)
    }

    /// Joins the group; table copies start (they run only while this member is a slave).
    func start(outer: BrokerOuterAPI) {
        outer.onMasterKnown.withLock { $0 = { [synchronize] master, _ in synchronize.masterKnown(brokerAddr: master, haAddr: nil) } }
        server.onRoleChange = { [weak self] _ in self?.roleChanged(outer: outer) }
        synchronize.start()
        for peer in server.settings.peers where peer.id != server.me.id { transport.prepare(peer) }
        server.start()
    }

    func close() async {
        lookup.withLock { $0.take() }?.cancel()
        server.close()
        await synchronize.close()
        try? await peerServer.close()
        await transport.close()
    }

    /// On the driver's thread: react off it (stopping delivery joins threads; registration waits for answers).
    private func roleChanged(outer: BrokerOuterAPI) {
        reacting.request { [self] in await react(outer: outer) }
    }

    /// Acts on the role the member has now (not the one that was reported: it may have moved on since). A follower's
    /// search for its master runs on: a later change ends it first (a new leader's registration as master must not
    /// wait behind a follower asking a stopped master), and waits for it, so registrations never overlap.
    private func react(outer: BrokerOuterAPI) async {
        if let previous = lookup.withLock({ $0.take() }) {
            previous.cancel()
            await previous.value
        }
        if server.isWritableNow {
            services.schedule.start()
            await outer.registerAll(services.registrationTopics)
            return
        }
        services.schedule.stop()
        let search = Task { [self] in await findMaster(outer: outer) }
        lookup.withLock { $0 = search }
    }

    /// A follower learns its master (whose tables it copies) from the NameServers' answer, which names the new leader
    /// only once that has registered as master: until then it asks again, or it would wait for the periodic
    /// registration (30 s) with no master or the deposed one. Ends when cancelled.
    private func findMaster(outer: BrokerOuterAPI) async {
        for _ in 0..<Self.masterLookupsMax {
            let master = await outer.registerAll(services.registrationTopics)
            guard !Task.isCancelled, !server.isWritableNow else { return }
            if let master, master != outer.brokerAddr, await outer.takesWrites(master, timeoutMillis: 300) { return }
            do { try await Task.sleep(for: .milliseconds(Self.masterLookupPauseMillis)) } catch { return }
        }
        services.log("dledger: the NameServers name no writable master for \(services.config.brokerName) yet; the periodic registration asks again")
    }

    /// A follower asks the NameServers for its master this many times, this far apart (10 s or more in all), after a
    /// role change.
    static let masterLookupsMax = 50
    static let masterLookupPauseMillis = 200

    /// GET_BROKER_HA_STATUS's body: the leader answers as a master with its followers, a follower as a slave.
    func haRuntimeInfo() -> HARuntimeInfo {
        let status = server.status()
        let end = Int64(services.store.commitLog.wroteOffset)
        guard status.writable else {
            let leader = status.leaderName.flatMap { server.settings.peer(named: $0)?.address } ?? ""
            return HARuntimeInfo(master: false, masterCommitLogMaxOffset: 0, inSyncSlaveNums: 0, haConnectionInfo: [],
                                 haClientRuntimeInfo: HARuntimeInfo.Client(masterAddr: leader, connected: status.leaderName != nil,
                                                                           maxOffset: end, lastReadTimestamp: 0))
        }
        let connections = status.members.map { member in
            HARuntimeInfo.Connection(addr: member.address, slaveAckOffset: Int64(member.matchIndex ?? 0), diff: member.lag ?? 0,
                                     lagMillis: 0, inSync: (member.lag ?? .max) == 0)
        }
        return HARuntimeInfo(master: true, masterCommitLogMaxOffset: end, inSyncSlaveNums: connections.count { $0.inSync },
                             haConnectionInfo: connections, haClientRuntimeInfo: nil)
    }

    /// GET_BROKER_RUNTIME_INFO's DLedger keys.
    var runtimeInfo: [String: String] {
        let status = server.status()
        return ["dledgerGroup": status.group, "dledgerSelfId": status.selfName, "dledgerRole": status.role,
                "dledgerTerm": "\(status.term)", "dledgerLeaderId": status.leaderName ?? "", "dledgerCommittedIndex": "\(status.commitIndex)",
                "dledgerWrittenIndex": "\(status.lastIndex)", "dledgerAppliedIndex": "\(status.appliedIndex)"]
    }

    /// GET_DLEDGER_STATUS's body.
    func statusBody() -> DLedgerStatusBody {
        let status = server.status()
        return DLedgerStatusBody(
            group: status.group, selfId: status.selfName, brokerAddr: services.brokerAddr, role: status.role, term: Int64(status.term),
            leaderId: status.leaderName, committedIndex: Int64(status.commitIndex), writtenIndex: Int64(status.lastIndex),
            appliedIndex: Int64(status.appliedIndex), writable: status.writable,
            members: status.members.map { DLedgerStatusBody.Member(name: $0.name, address: $0.address, matchIndex: $0.matchIndex.map { Int64($0) },
                                                                   lag: $0.lag) })
    }
}
