import CommitLog
import IndexFile
import Raft

extension DLedgerServer {
    /// `Ready`s taken in a row before the driver looks at its inbox again.
    static let readyRoundsMax = 64

    /// Carries out a cycle's `Ready` in `Ready`'s order, then takes the next until one is empty: close the write
    /// gate if leadership moved (before anything is applied), send the leader's appends (they may leave before the
    /// leader's own write: its entries count only once durable), write the log, send the rest (votes and
    /// acknowledgements never outrun the disk), apply what committed, open the gate when a leader caught up,
    /// report the role.
    func carryOut(_ first: Cycle) {
        var cycle = first
        // Every `Ready` taken is carried out: the round limit is checked before the next one is taken (one taken
        // and dropped would lose its writes and messages while the core believes them done).
        for round in 1...Self.readyRoundsMax {
            closeGateIfLeadershipMoved(cycle)
            let ready = cycle.ready
            if !ready.isEmpty {
                guard disk.failure == nil else { return }
                let appends = ready.messagesToSend.filter { if case .append = $0.body { true } else { false } }
                let others = ready.messagesToSend.filter { if case .append = $0.body { false } else { true } }
                send(appends)
                if ready.needsSync {
                    do { try disk.write(truncateFrom: ready.truncateFrom, entries: ready.entriesToPersist, hardState: ready.hardState) } catch {
                        log("dledger: \(error); this member stops taking part in its group (reads go on)")
                        closeGate(because: "the Raft log failed")
                        return
                    }
                }
                send(others)
                for member in ready.rebuildNeeded {
                    let name = settings.peer(member)?.name ?? "\(member)"
                    let who = member == me.id ? "this member lacks entries the group compacted (it lost its Raft log?)"
                        : "\(name) lacks entries this leader compacted (did it lose its Raft log?); serving the others"
                    log("dledger: \(who); \(name) needs a rebuild from another member's store (copy its commit log and "
                        + "dledger directory)")
                }
            }
            apply(upTo: cycle.commitIndex)
            openGateIfCaughtUp(cycle)
            reportRole(cycle)
            guard !ready.isEmpty, round < Self.readyRoundsMax else { return }
            cycle = core.withLock { Cycle(core: &$0) }
        }
    }

    /// Work outside `Ready`s: expired waits, compaction.
    func afterCycle(now: UInt64) {
        waiters.expire(now: now)
        compactIfDue()
    }

    private func send(_ messages: [RaftMessage]) {
        guard !messages.isEmpty else { return }
        var byTarget: [NodeID: [RaftMessage]] = [:]
        for message in messages { byTarget[message.target, default: []].append(message) }
        for (target, batch) in byTarget {
            guard let peer = settings.peer(target) else { continue }
            transport.send(batch, group: settings.group, to: peer)
        }
    }

    // MARK: The write gate

    /// Closes the gate when this member no longer leads in the term it opened it for, or a proposal was dropped
    /// after its append.
    private func closeGateIfLeadershipMoved(_ cycle: Cycle) {
        let gate = gateTerm.load(ordering: .acquiring)
        let repair = needsRepair.load(ordering: .acquiring)
        guard gate != 0 || repair else { return }
        if gate != 0 && !repair && cycle.role == .leader && cycle.term.rawValue == gate { return }
        closeGate(because: repair ? "a proposal was dropped after its append" : "leadership moved (\(cycle.role) in \(cycle.term))")
    }

    /// No put is admitted from here on; those waiting fail (their entries may still commit, and are then applied
    /// from the Raft log); the commit log is cut back to what committed.
    func closeGate(because reason: String) {
        _ = try? store.commitLog.withAppendsHeld { gateTerm.store(0, ordering: .releasing) }
        needsRepair.store(false, ordering: .releasing)
        waiters.failAll()
        cutUncommitted()
        log("dledger: \(me.name) stops taking writes: \(reason)")
    }

    /// Cuts the commit log (and queues) back to the end of the applied entries.
    func cutUncommitted() {
        guard store.commitLog.wroteOffset > appliedEnd else { return }
        do {
            let end = try store.truncate(to: appliedEnd)
            log("dledger: commit log cut back to \(end), the end of the committed entries")
        } catch {
            log("dledger: cannot cut the commit log back to \(appliedEnd): \(error)")
        }
    }

    /// Opens the gate when this member leads, is not handing over, and has applied and dispatched its whole log
    /// (so every entry committed before its term is visible, and queue offsets continue from the queues).
    private func openGateIfCaughtUp(_ cycle: Cycle) {
        guard gateTerm.load(ordering: .acquiring) == 0, cycle.role == .leader, !cycle.transferring, disk.failure == nil else { return }
        guard appliedIndex >= cycle.lastIndex, appliedIndex >= cycle.termStartIndex else { return }
        cutUncommitted()
        guard store.commitLog.wroteOffset == appliedEnd, store.dispatchBehindBytes == 0 else { return }
        store.resetQueueOffsetsFromQueues()
        _ = try? store.commitLog.withAppendsHeld { gateTerm.store(cycle.term.rawValue, ordering: .releasing) }
        log("dledger: \(me.name) leads \(settings.group) in \(cycle.term), applied through \(appliedIndex) (commit log end "
            + "\(appliedEnd)): taking writes")
    }

    private func reportRole(_ cycle: Cycle) {
        let role = DLedgerRole(raftRole: cycle.role, term: cycle.term.rawValue, leader: cycle.leader.flatMap { settings.peer($0) },
                               writable: gateTerm.load(ordering: .acquiring) != 0)
        guard role != reportedRole else { return }
        reportedRole = role
        publishedRole.withLock { $0 = role }
        log("dledger: \(me.name) is now \(role)")
        onRoleChange(role)
    }

    // MARK: Applying committed entries

    /// Applies committed entries in order, in batches read under the core's lock; a failure (disk full) stops
    /// here and the next cycle retries. Then readers may see up to the applied end, and the puts it covers are
    /// answered.
    func apply(upTo commitIndex: LogIndex) {
        guard appliedIndex < commitIndex else { return }
        applying: while appliedIndex < commitIndex {
            let last = min(commitIndex, appliedIndex.advanced(by: 512))
            let first = appliedIndex.next
            let batch = core.withLock { core in
                (first.rawValue...last.rawValue).compactMap { core.entry(at: LogIndex($0)) }
            }
            precondition(batch.count == first.distance(to: last) + 1, "committed entries \(first)...\(last) are not all in the log")
            for entry in batch {
                do { try applyEntry(entry) } catch {
                    if !applyFailureLogged { log("dledger: cannot apply \(entry.index): \(error); retrying") }
                    applyFailureLogged = true
                    break applying
                }
                applyFailureLogged = false
                appliedIndex = entry.index
                retainedAppliedBytes += entry.sizeBytes
            }
        }
        appliedIndexAtomic.store(appliedIndex.rawValue, ordering: .releasing)
        store.commitLog.limitVisibility(to: appliedEnd)
        waiters.complete(upTo: appliedEnd)
    }
}
