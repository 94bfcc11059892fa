// Elections: terms, pre-votes, votes, and the steps of pre-candidates and candidates.

extension RaftCore {
    /// Pre-campaigns (or campaigns, after a transfer or without pre-vote) and asks every peer for a vote.
    mutating func startCampaign(transfer: Bool) {
        if config.preVote && !transfer {
            becomePreCandidate()
            requestVotes(preVote: true, transfer: false)
        } else {
            campaignForNextTerm(transfer: transfer)
        }
    }

    /// Moves to the next term as a candidate and asks for votes.
    mutating func campaignForNextTerm(transfer: Bool) {
        becomeCandidate()
        requestVotes(preVote: false, transfer: transfer)
    }

    private mutating func requestVotes(preVote: Bool, transfer: Bool) {
        // A one-node group has its quorum already.
        if countVotes() == .won {
            preVote ? campaignForNextTerm(transfer: false) : becomeLeader()
            return
        }
        let request = VoteRequest(lastIndex: log.lastIndex, lastTerm: log.lastTerm, preVote: preVote, transfer: transfer)
        for peer in peers {
            send(to: peer, term: preVote ? term.next : term, .voteRequest(request))
        }
    }

    enum Tally { case pending, won, lost }

    func countVotes() -> Tally {
        var granted = 0
        var rejected = 0
        for answer in votes.values {
            if answer { granted += 1 } else { rejected += 1 }
        }
        if granted >= config.quorum { return .won }
        if config.members.count - rejected < config.quorum { return .lost }
        return .pending
    }

    /// A message from a later term. Returns false when the message is to be ignored.
    mutating func stepHigherTerm(_ message: RaftMessage) -> Bool {
        switch message.body {
        case .voteRequest(let request):
            // Someone campaigns while this node hears a live leader: ignore it, so that a node that was cut off
            // cannot depose a healthy leader (unless the leader itself asked for the transfer).
            if inLease && !request.transfer { return false }
            // A pre-vote is answered without moving to its term.
            if request.preVote { return true }
            becomeFollower(term: message.term, leader: nil)
        case .voteResponse(let response) where response.preVote && response.granted:
            // A pre-vote grant names the term this node would campaign in; nobody moved there yet.
            return true
        case .append, .heartbeat, .timeoutNow:
            becomeFollower(term: message.term, leader: message.source)
        case .voteResponse, .appendResponse, .heartbeatResponse:
            becomeFollower(term: message.term, leader: nil)
        }
        return true
    }

    /// A message from an earlier term: answer so that the sender learns the current term, or ignore it.
    mutating func stepLowerTerm(_ message: RaftMessage) {
        switch message.body {
        case .append, .heartbeat:
            // A leader that was cut off (and could not hear the new term, since pre-vote keeps terms from
            // rising needlessly) learns it here and steps down.
            send(to: message.source, .heartbeatResponse)
        case .voteRequest(let request) where request.preVote:
            // The pre-candidate learns the later term and follows it instead of retrying forever.
            send(to: message.source, .voteResponse(VoteResponse(granted: false, preVote: true)))
        case .voteRequest, .voteResponse, .appendResponse, .heartbeatResponse, .timeoutNow:
            break
        }
    }

    /// Grants or refuses a (pre-)vote: one vote per term, and only to a log at least as up to date as ours.
    /// **Durability:** a granted vote is in the next `Ready`'s hard state, which is synced before the answer leaves.
    mutating func answerVote(_ message: RaftMessage, _ request: VoteRequest) {
        var mayVote = vote == message.source || (vote == nil && leader == nil)
        if request.preVote && message.term > term { mayVote = true }
        if !request.preVote && config.injectedBugs.contains(.voteTwiceInOneTerm) { mayVote = true }
        let granted = mayVote && log.isUpToDate(lastIndex: request.lastIndex, lastTerm: request.lastTerm)
        if request.preVote {
            send(
                to: message.source, term: granted ? message.term : term,
                .voteResponse(VoteResponse(granted: granted, preVote: true)))
            return
        }
        if granted {
            vote = message.source
            resetElectionTimer()
        }
        send(to: message.source, .voteResponse(VoteResponse(granted: granted, preVote: false)))
    }

    mutating func stepPreCandidate(_ message: RaftMessage) {
        switch message.body {
        case .append, .heartbeat:
            // A leader of this very term exists.
            becomeFollower(term: term, leader: message.source)
            stepFollower(message)
        case .voteResponse(let response) where response.preVote:
            // Grants carry the prospective term, refusals the voter's (no later than ours, or we would follow).
            guard message.term == (response.granted ? term.next : term) else { return }
            votes[message.source] = response.granted
            switch countVotes() {
            case .won: campaignForNextTerm(transfer: false)
            case .lost: becomeFollower(term: term, leader: nil)
            case .pending: break
            }
        case .voteRequest, .voteResponse, .appendResponse, .heartbeatResponse, .timeoutNow:
            break
        }
    }

    mutating func stepCandidate(_ message: RaftMessage) {
        switch message.body {
        case .append, .heartbeat:
            becomeFollower(term: term, leader: message.source)
            stepFollower(message)
        case .voteResponse(let response) where !response.preVote:
            votes[message.source] = response.granted
            switch countVotes() {
            case .won: becomeLeader()
            case .lost: becomeFollower(term: term, leader: nil)
            case .pending: break
            }
        case .voteRequest, .voteResponse, .appendResponse, .heartbeatResponse, .timeoutNow:
            break
        }
    }
}
