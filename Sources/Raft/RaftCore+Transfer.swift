// Leadership transfer (DLedger's LEADERSHIP_TRANSFER) and the preferred leader.

extension RaftCore {
    /// Hands leadership to `target`: proposals are dropped (`.transferInProgress`) while the target catches up,
    /// then it is told to campaign at once (TimeoutNow). If it has not taken over within an election timeout,
    /// this node keeps leading and accepts proposals again.
    ///
    /// **Thread:** the core's owner. Watch the following `Ready`s' `roleChange` for the outcome.
    public mutating func transferLeadership(to target: NodeID) -> TransferResult {
        guard role == .leader else { return .rejected("\(config.id) is not the leader") }
        if target == config.id || target == transferee { return .alreadyDone }
        guard let index = progress.firstIndex(where: { $0.id == target }) else {
            return .rejected("\(target) is not a member of \(config.members)")
        }
        let lag = progress[index].match.distance(to: log.lastIndex)
        guard lag <= config.transferLagMax else {
            return .rejected("\(target) lags \(lag) entries; at most \(config.transferLagMax) allowed")
        }
        transferee = target
        transferElapsed = 0
        if progress[index].match == log.lastIndex {
            send(to: target, .timeoutNow)
        }  // else the next acknowledgement that catches it up sends TimeoutNow
        return .started
    }

    mutating func abortTransfer() {
        transferee = nil
        transferElapsed = 0
    }

    /// A leader that is not the preferred member hands over to it once it is reachable and caught up.
    mutating func considerPreferredLeader() {
        guard let preferred = config.preferredLeader, preferred != config.id, transferee == nil else { return }
        guard let peer = progress.first(where: { $0.id == preferred }) else { return }
        guard isActive(peer), peer.match == log.lastIndex else { return }
        _ = transferLeadership(to: preferred)
    }
}
