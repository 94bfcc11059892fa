import ArgumentParser
import Client
import Common

struct DLedgerStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dledgerStatus",
        abstract: "A DLedger group: each member's role, term, committed, written and applied index, and lag behind the leader.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker name (the DLedger group's brokerName)") var brokerName: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let rows = try await admin.dledgerGroupStatus(brokerName: brokerName)
            let statuses = rows.compactMap { try? $0.status.get() }
            let leader = statuses.first { $0.role == "leader" }
            print("#Broker Name \(brokerName)  #Group \(statuses.first?.group ?? "-")  #Leader \(leader?.selfId ?? "-")"
                  + "  #Term \(leader.map { "\($0.term)" } ?? "-")")
            print(pad("#Member", 9) + pad("#Broker Address", 24) + pad("#Role", 14) + pad("#Term", 8) + pad("#Committed", 12)
                  + pad("#Written", 12) + pad("#Applied", 12) + pad("#Lag", 8) + "#Writable")
            for (address, result) in rows {
                guard case .success(let status) = result else {
                    print(pad("-", 9) + pad(address, 24) + "unreachable")
                    continue
                }
                let lag = status.selfId == leader?.selfId ? 0 : leader?.members.first { $0.name == status.selfId }?.lag
                print(pad(status.selfId, 9) + pad(address, 24) + pad(status.role, 14) + pad("\(status.term)", 8)
                      + pad("\(status.committedIndex)", 12) + pad("\(status.writtenIndex)", 12) + pad("\(status.appliedIndex)", 12)
                      + pad(lag.map { "\($0)" } ?? "-", 8) + "\(status.writable)")
            }
        }
    }
}

struct LeadershipTransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leadershipTransfer", abstract: "Hand a DLedger group's leadership to a named member, and wait until it takes writes.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker name (the DLedger group's brokerName)") var brokerName: String
    @Option(name: .customShort("t"), help: "the member to lead, as dLegerPeers names it (n1)") var transfereeID: String
    @Option(name: .customLong("timeout"), help: "milliseconds to wait for the new leader") var timeoutMillis: Int64 = 10_000

    func run() async throws {
        try await withAdmin(options) { admin in
            let status = try await admin.transferLeadership(brokerName: brokerName, to: transfereeID, timeoutMillis: timeoutMillis)
            print("\(status.selfId) (\(status.brokerAddr)) leads \(brokerName) in term \(status.term)")
        }
    }
}
