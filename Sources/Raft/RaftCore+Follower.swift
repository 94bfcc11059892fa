// The follower: accept the leader's entries where its log matches, reject with a hint where it does not.

extension RaftCore {
    mutating func stepFollower(_ message: RaftMessage) {
        switch message.body {
        case .append(let request):
            heardFromLeader(message.source)
            // A malformed append (a buggy or hostile peer) is dropped rather than trusted.
            guard isWellFormed(request, term: message.term) else { return }
            heardCompactable(request.compactable)
            handleAppend(from: message.source, request)
        case .heartbeat(let commit, let compactable):
            heardFromLeader(message.source)
            heardCompactable(compactable)
            // The leader caps `commit` by what it knows this log matches, so it never commits a divergent tail.
            log.commit(to: commit)
            send(to: message.source, .heartbeatResponse)
        case .timeoutNow:
            // The leader hands over: campaign at once, skipping pre-vote, and voters skip their lease check.
            campaignForNextTerm(transfer: true)
        case .voteRequest, .voteResponse, .appendResponse, .heartbeatResponse:
            break
        }
    }

    private mutating func heardFromLeader(_ source: NodeID) {
        electionElapsed = 0
        leader = source
    }

    /// Entries numbered on from `prevIndex`, terms never decreasing from `prevTerm` and never past the
    /// sender's term.
    private func isWellFormed(_ request: AppendRequest, term: Term) -> Bool {
        var expected = request.prevIndex
        var previousTerm = request.prevTerm
        guard previousTerm <= term else { return false }
        for entry in request.entries {
            guard expected.rawValue < UInt64.max, entry.index == expected.next else { return false }
            guard entry.term >= previousTerm, entry.term <= term else { return false }
            expected = entry.index
            previousTerm = entry.term
        }
        return true
    }

    /// Appends the leader's entries after `prevIndex` if this log holds `(prevIndex, prevTerm)`, else rejects
    /// with the last index at or below `prevIndex` whose term is at most `prevTerm`.
    /// **Durability:** the answer leaves with the `Ready` that persists the entries (and any truncation).
    private mutating func handleAppend(from source: NodeID, _ request: AppendRequest) {
        if request.prevIndex < log.committed {
            // Committed entries match the leader's; everything through the commit index is known to match.
            send(to: source, .appendResponse(.accepted(matchIndex: log.committed)))
            return
        }
        // The injected bug accepts an older term at `prevIndex` as if it matched.
        let skipsCheck =
            config.injectedBugs.contains(.acceptAppendWithoutMatching)
            && log.term(at: request.prevIndex).map { $0 <= request.prevTerm } == true
        guard skipsCheck || log.matches(request.prevIndex, request.prevTerm) else {
            let hintIndex = log.lastIndex(atOrBelow: request.prevIndex, termAtMost: request.prevTerm)
            let hintTerm = log.term(at: hintIndex) ?? .zero
            let rejection = AppendResponse.rejected(rejectedIndex: request.prevIndex, hintIndex: hintIndex, hintTerm: hintTerm)
            send(to: source, .appendResponse(rejection))
            return
        }
        // Refused only when it would remove a committed entry, which a correct leader never asks: say nothing.
        guard log.accept(after: request.prevIndex, request.entries) else { return }
        log.commit(to: min(request.commit, request.lastIndex))
        send(to: source, .appendResponse(.accepted(matchIndex: request.lastIndex)))
    }
}
