import Common
import Remoting

extension Admin {
    /// GET_DLEDGER_STATUS (ours) of the broker at `address`.
    public func dledgerStatus(_ address: String, timeoutMillis: Int64? = nil) async throws -> DLedgerStatusBody {
        try DLedgerStatusBody.decode(from: try await client.call(address, code: RequestCode.getDLedgerStatus, timeoutMillis: timeoutMillis).body)
    }

    /// The status of every member of DLedger group `brokerName` the NameServers list (one registration per
    /// member: the leader as id 0, the others as their Raft id + 1), or the error a member gave.
    public func dledgerGroupStatus(brokerName: String) async throws -> [(address: String, status: Result<DLedgerStatusBody, Error>)] {
        let members = try await clusterInfo().filter { $0.brokerName == brokerName }
        guard !members.isEmpty else { throw ClientError.badResponse("the NameServers know no broker named \(brokerName)") }
        // A second each: a stopped member must not hold up the others' rows for long.
        var rows: [(address: String, status: Result<DLedgerStatusBody, Error>)] = []
        for address in Set(members.map(\.address)) {
            do { rows.append((address, .success(try await dledgerStatus(address, timeoutMillis: 1_000)))) } catch {
                rows.append((address, .failure(error)))
            }
        }
        return rows.sorted { $0.address < $1.address }
    }

    /// Asks the leader of DLedger group `brokerName` to hand leadership to the member named `transfereeID` (`n1`),
    /// then waits until that member takes writes.
    /// - Returns: the new leader's status.
    /// - Throws: `ClientError` when no member leads, the leader refuses (the target lags too far, is unknown), or
    ///   the target does not take over within `timeoutMillis`.
    public func transferLeadership(brokerName: String, to transfereeID: String, timeoutMillis: Int64 = 10_000) async throws
        -> DLedgerStatusBody {
        let start = uptimeNanos()
        func elapsedMillis() -> Int64 { Int64((uptimeNanos() - start) / 1_000_000) }
        var asked = false
        while elapsedMillis() < timeoutMillis {
            let statuses = try await dledgerGroupStatus(brokerName: brokerName).compactMap { try? $0.status.get() }
            if let target = statuses.first(where: { $0.selfId == transfereeID && $0.writable }) { return target }
            if !asked, let leader = statuses.first(where: { $0.role == "leader" }) {
                if leader.selfId == transfereeID && leader.writable { return leader }
                _ = try await client.call(leader.brokerAddr, code: RequestCode.dledgerLeadershipTransfer, fields: ["transfereeId": transfereeID])
                asked = true
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClientError.badResponse("\(transfereeID) did not take over the leadership of \(brokerName) within \(timeoutMillis) ms")
    }
}
