import CommitLog
import Common
import NIOCore
import Remoting
import Replication

/// What replication this broker runs: a master serves its slaves on the HA port; a slave follows its master
/// (HA client, metadata copy, fork check); a DLedger member's role follows its Raft group.
enum ReplicaRole: Sendable {
    case master(HAService)
    case slave(HAClient, SlaveSynchronize)
    case dledger(DLedgerMember)

    init(haService: HAService?, services: BrokerServices, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) throws {
        if let haService {
            self = .master(haService)
            return
        }
        // The HA client waits for its master until the first check of the logs points it at one.
        let client = try HAClient(commitLog: services.store.commitLog, settings: services.config.ha, masterAddress: nil, log: log)
        self = .slave(client, SlaveSynchronize(services: services, haClient: client, group: group))
    }

    /// Advertises the HA port (a master) or starts following the master (a slave).
    func start(outer: BrokerOuterAPI) {
        switch self {
        case .master(let service):
            outer.haServerAddr.withLock { $0 = outer.config.haServerAddress(port: service.port) }
        case .slave(_, let synchronize):
            outer.onMasterKnown.withLock { $0 = { master, haAddr in synchronize.masterKnown(brokerAddr: master, haAddr: haAddr) } }
            synchronize.start()
        case .dledger(let member):
            member.start(outer: outer)
        }
    }

    func close() async {
        switch self {
        case .master(let service): service.close()
        case .slave(let client, let synchronize):
            await synchronize.close()
            client.close()
        case .dledger(let member):
            await member.close()
        }
    }

    /// GET_BROKER_HA_STATUS's body.
    func haRuntimeInfo(commitLogEnd: UInt64) -> HARuntimeInfo {
        switch self {
        case .master(let service):
            let status = service.status
            let connections = status.slaves.map { slave in
                HARuntimeInfo.Connection(addr: slave.remoteAddress, slaveAckOffset: slave.ackedOffset.map { Int64($0) } ?? -1,
                                         diff: Int64(slave.lagBytes), lagMillis: slave.lagMillis, inSync: slave.inSync)
            }
            return HARuntimeInfo(master: true, masterCommitLogMaxOffset: Int64(status.masterMaxOffset),
                                 inSyncSlaveNums: status.inSyncSlaveCount, haConnectionInfo: connections, haClientRuntimeInfo: nil)
        case .slave(let client, _):
            let status = client.status
            return HARuntimeInfo(master: false, masterCommitLogMaxOffset: 0, inSyncSlaveNums: 0, haConnectionInfo: [],
                                 haClientRuntimeInfo: HARuntimeInfo.Client(
                                    masterAddr: status.masterAddress ?? "", connected: status.isConnected,
                                    maxOffset: Int64(status.offset), lastReadTimestamp: status.lastPushMillis))
        case .dledger(let member):
            return member.haRuntimeInfo()
        }
    }

    /// GET_BROKER_RUNTIME_INFO's replication keys.
    var runtimeInfo: [String: String] {
        switch self {
        case .master(let service):
            let status = service.status
            return ["haListenPort": "\(service.port)", "haSlaveCount": "\(status.slaves.count)",
                    "haInSyncSlaveCount": "\(status.inSyncSlaveCount)",
                    "haSlaveMaxLagBytes": "\(status.slaves.map(\.lagBytes).max() ?? 0)"]
        case .slave(let client, _):
            let status = client.status
            var info = ["haConnected": "\(status.isConnected)", "haSlaveOffset": "\(status.offset)"]
            if let master = status.masterAddress { info["haMasterAddress"] = master }
            if status.lastPushMillis > 0 { info["haLastPushMillisAgo"] = "\(max(0, currentTimeMillis() - status.lastPushMillis))" }
            return info
        case .dledger(let member):
            return member.runtimeInfo
        }
    }
}
