// The leader: proposals, pipelined and batched appends, heartbeats, commit by quorum, check-quorum.

extension RaftCore {
    /// Appends client data to the leader's log; followers receive it with the next `Ready`'s messages.
    ///
    /// - Parameter payload: opaque bytes (for the broker: one stored message record).
    /// - Returns: `.accepted(index:term:)`, or `.dropped` when this node does not lead, hands leadership over,
    ///   or holds `uncommittedBytesMax` of uncommitted entries already (then nothing was appended).
    ///
    /// **Thread:** the core's owner. **Durability:** none on return; the entry is persisted with the next
    /// `Ready` and acknowledged only when a later `Ready` reports its index committed.
    public mutating func propose(_ payload: EntryPayload) -> ProposeResult {
        if let reason = proposeRefusal(payloadBytes: payload.count) { return .dropped(reason) }
        let entry = LogEntry(index: log.lastIndex.next, term: term, kind: .normal, payload: payload)
        log.append(entry)
        uncommittedBytes += entry.sizeBytes
        return .accepted(index: entry.index, term: term)
    }

    /// Why `propose` would drop a payload of `payloadBytes` now, or nil when it would append it. A driver that
    /// must not fail after it committed to a proposal (the broker appends to its commit log first) asks here.
    public func proposeRefusal(payloadBytes: Int) -> DropReason? {
        guard role == .leader else { return .notLeader(leader: leader) }
        guard transferee == nil else { return .transferInProgress }
        // One entry is always allowed when nothing is pending, however large, so a big entry cannot wedge us.
        let size = payloadBytes + LogEntry.headerBytes
        guard uncommittedBytes == 0 || uncommittedBytes + size <= config.uncommittedBytesMax else {
            return .uncommittedBytesOverLimit
        }
        return nil
    }

    mutating func tickLeader() {
        heartbeatElapsed += 1
        if transferee != nil {
            transferElapsed += 1
            // The target did not take over within an election timeout: keep leading, accept proposals again.
            if transferElapsed >= config.electionTicks { abortTransfer() }
        }
        // Check-quorum: a leader that has not heard from a majority for an election timeout steps down, so it
        // stops accepting writes that could never commit, and its followers are free to elect a reachable one.
        if config.checkQuorum && activeMembers() < config.quorum {
            becomeFollower(term: term, leader: nil)
            return
        }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            for peer in progress {
                // The commit is capped by the follower's match: it may hold a divergent tail beyond it.
                send(to: peer.id, .heartbeat(commit: min(peer.match, log.committed), compactable: compactableIndex))
            }
            considerPreferredLeader()
        }
    }

    /// Members heard from within an election timeout, this node included.
    func activeMembers() -> Int {
        1 + progress.count { isActive($0) }
    }

    func isActive(_ peer: Progress) -> Bool { now - peer.lastHeardAt < UInt64(config.electionTicks) }

    mutating func stepLeader(_ message: RaftMessage) {
        guard let index = progress.firstIndex(where: { $0.id == message.source }) else { return }
        progress[index].lastHeardAt = now
        switch message.body {
        case .appendResponse(let response): handleAppendResponse(from: index, response)
        case .heartbeatResponse: handleHeartbeatResponse(from: index)
        case .append, .heartbeat, .timeoutNow, .voteRequest, .voteResponse:
            // No other leader of this term exists; vote answers come too late to matter.
            break
        }
    }

    private mutating func handleAppendResponse(from index: Int, _ response: AppendResponse) {
        switch response {
        case .accepted(let match):
            guard match <= log.lastIndex else { return }  // not something this leader sent
            guard progress[index].acknowledged(through: match) else { return }
            advanceCommit()
            if transferee == progress[index].id && match == log.lastIndex {
                send(to: progress[index].id, .timeoutNow)
            }
        case .rejected(let rejectedIndex, let hintIndex, let hintTerm):
            // Skip back over every entry of a term the follower cannot hold: the last index at or below its hint
            // whose term is at most the hint's term.
            let guess = log.lastIndex(atOrBelow: hintIndex, termAtMost: hintTerm)
            guard progress[index].rejected(rejectedIndex, retryFrom: guess) else { return }
            noteLostFollower(index, guess: guess)
        }
    }

    private mutating func handleHeartbeatResponse(from index: Int) {
        guard progress[index].match < log.lastIndex else { return }
        switch progress[index].state {
        case .probe:
            // The follower is reachable: probe again (the last probe or its answer may be lost).
            progress[index].probeSent = false
        case .replicate:
            // An append unanswered for two heartbeat periods is presumed lost: resend from the match.
            if let sentAt = progress[index].oldestInflightSentAt, now - sentAt >= UInt64(2 * config.heartbeatTicks) {
                progress[index].becomeProbe()
            }
        }
    }

    /// Sends every append the followers' states allow: one probe each for followers in probe state, and for
    /// followers in replicate state batches of up to `appendBytesMax`, until `inflightAppendsMax` are out.
    mutating func sendPendingAppends() {
        for index in progress.indices {
            while sendAppend(to: index) {}
        }
    }

    /// Sends one append; returns whether another may follow right away.
    private mutating func sendAppend(to index: Int) -> Bool {
        // Entries before this log's start were compacted: every member held them, so probing resumes at the start
        // (a follower that lacks it rejects, and `noteLostFollower` reports it).
        if progress[index].next <= log.snapshotIndex { progress[index].next = log.firstIndex }
        let peer = progress[index]
        guard !peer.isPaused(inflightAppendsMax: config.inflightAppendsMax) else { return false }
        let entries = log.entries(from: peer.next, bytesMax: config.appendBytesMax)
        if peer.state == .replicate && entries.isEmpty { return false }
        let prevIndex = peer.next.previous
        guard let prevTerm = log.term(at: prevIndex) else {
            fatalError("\(peer.id): next index \(peer.next) is past the log's end \(log.lastIndex)")
        }
        let request = AppendRequest(
            prevIndex: prevIndex, prevTerm: prevTerm, entries: Array(entries), commit: log.committed,
            compactable: compactableIndex)
        send(to: peer.id, .append(request))
        progress[index].sent(through: request.lastIndex, entryCount: entries.count, now: now)
        return progress[index].state == .replicate
    }

    /// Commits the highest index a quorum holds durably, if it belongs to this term: an entry of an earlier term
    /// is committed only by the current term's entries after it (Raft's Figure 8 explains why counting replicas
    /// of an old entry is not enough). The leader counts its own entries once they were handed to the driver in a
    /// `Ready` (the driver completes a `Ready` before it calls the core again), so a commit index never names an
    /// entry that a crash of the leader could still take from the quorum.
    mutating func advanceCommit() {
        defer { updateCompactableIndex() }
        var matches = progress.map(\.match)
        matches.append(log.persistedIndex)
        matches.sort(by: >)
        let candidate = matches[config.quorum - 1]
        guard candidate > log.committed else { return }
        guard log.term(at: candidate) == term || config.injectedBugs.contains(.commitOldTermByCounting) else { return }
        var released = max(log.committed.next, termStartIndex)
        log.commit(to: candidate)
        while released <= candidate {
            uncommittedBytes -= log.entry(at: released)?.sizeBytes ?? 0
            released = released.next
        }
        uncommittedBytes = max(uncommittedBytes, 0)
    }
}

/// What a client proposes: opaque bytes.
public typealias EntryPayload = [UInt8]
