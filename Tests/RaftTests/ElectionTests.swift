@_spi(Testing) import Raft
import Testing

/// Elections: who may vote for whom, when terms move, and what pre-vote and leases prevent.
@Suite struct ElectionTests {
    /// One node restored with `terms` as its log and `term` as its hard state, fed one vote request.
    private func answer(
        log terms: [UInt64], term: UInt64, vote: NodeID? = nil, request: VoteRequest, requestTerm: UInt64,
        from candidate: UInt32 = 1
    ) -> (granted: Bool?, core: RaftCore, ready: Ready) {
        let durable = DurableState(hardState: HardState(term: Term(term), vote: vote), entries: entries(terms: terms))
        var core = RaftCore(config: makeConfig(0, members: 3), restoring: durable, seed: 1)
        core.step(RaftMessage(source: node(candidate), target: node(0), term: Term(requestTerm), body: .voteRequest(request)))
        let ready = core.takeReady()
        let granted = ready.messagesToSend.compactMap { message -> Bool? in
            if case .voteResponse(let response) = message.body { return response.granted } else { return nil }
        }.first
        return (granted, core, ready)
    }

    private func request(_ lastIndex: UInt64, _ lastTerm: UInt64, preVote: Bool = false) -> VoteRequest {
        VoteRequest(lastIndex: LogIndex(lastIndex), lastTerm: Term(lastTerm), preVote: preVote, transfer: false)
    }

    @Test func voteIsGrantedOnlyToALogAtLeastAsUpToDate() {
        // The voter's log ends at #3 in t2.
        #expect(answer(log: [1, 2, 2], term: 2, request: request(2, 2), requestTerm: 3).granted == false, "shorter, same last term")
        #expect(answer(log: [1, 2, 2], term: 2, request: request(5, 1), requestTerm: 3).granted == false, "longer, older last term")
        #expect(answer(log: [1, 2, 2], term: 2, request: request(3, 2), requestTerm: 3).granted == true, "equal")
        #expect(answer(log: [1, 2, 2], term: 2, request: request(1, 3), requestTerm: 3).granted == true, "shorter, newer last term")
    }

    @Test func grantedVoteIsPersistedInTheSameReadyAsTheAnswer() {
        let (granted, core, ready) = answer(log: [], term: 1, request: request(0, 0), requestTerm: 2)
        #expect(granted == true)
        #expect(core.term == Term(2))
        #expect(ready.hardState == HardState(term: Term(2), vote: node(1), commit: .zero), "written and synced before the answer leaves")
        #expect(ready.needsSync)
    }

    @Test func aNodeVotesOncePerTerm() {
        var (granted, core, _) = answer(log: [], term: 1, request: request(0, 0), requestTerm: 2, from: 1)
        #expect(granted == true)
        core.step(RaftMessage(source: node(2), target: node(0), term: Term(2), body: .voteRequest(request(0, 0))))
        core.step(RaftMessage(source: node(1), target: node(0), term: Term(2), body: .voteRequest(request(0, 0))))
        let answers = core.takeReady().messagesToSend.map { ($0.target, $0.body) }
        #expect(answers.count == 2)
        #expect(answers[0].0 == node(2) && answers[0].1 == .voteResponse(VoteResponse(granted: false, preVote: false)))
        #expect(answers[1].0 == node(1) && answers[1].1 == .voteResponse(VoteResponse(granted: true, preVote: false)), "the same candidate may ask again")
        #expect(core.vote == node(1))
    }

    @Test func restartedNodeRemembersItsVote() {
        let (granted, _, _) = answer(log: [], term: 2, vote: node(1), request: request(0, 0), requestTerm: 2, from: 2)
        #expect(granted == false, "voted for n1 in t2 before the restart")
    }

    @Test func preVoteChangesNeitherTermNorVote() {
        let (granted, core, ready) = answer(log: [1], term: 1, request: request(1, 1, preVote: true), requestTerm: 2)
        #expect(granted == true)
        #expect(core.term == Term(1))
        #expect(core.vote == nil)
        #expect(ready.hardState == nil, "nothing to persist for a pre-vote")
        #expect(ready.messagesToSend.first?.term == Term(2), "a grant carries the prospective term")
    }

    @Test func higherTermMakesALeaderStepDown() {
        var cluster = TestCluster()
        cluster.elect(0)
        #expect(cluster.nodes[0].role == .leader)
        let term = cluster.nodes[0].term
        cluster.nodes[0].step(RaftMessage(source: node(1), target: node(0), term: term.next, body: .heartbeatResponse))
        #expect(cluster.nodes[0].role == .follower)
        #expect(cluster.nodes[0].term == term.next)
        #expect(cluster.nodes[0].vote == nil, "a new term starts without a vote")
        #expect(cluster.nodes[0].takeReady().roleChange == RoleChange(role: .follower, term: term.next, leader: nil))
    }

    @Test func staleLeaderLearnsTheNewTermFromAnyFollower() {
        var cluster = TestCluster()
        cluster.elect(0)
        let staleTerm = cluster.nodes[0].term
        cluster.isolate(0)
        cluster.tick(30, only: [1, 2])  // n0 does not tick: it still believes it leads
        guard let newLeader = cluster.leader, newLeader != 0 else {
            Issue.record("n1 and n2 elected no leader: \(cluster.nodes.map(\.role))")
            return
        }
        let follower = 3 - newLeader
        cluster.nodes[follower].step(RaftMessage(source: node(0), target: NodeID(UInt32(follower)), term: staleTerm, body: .heartbeat(commit: .zero)))
        let answer = cluster.nodes[follower].takeReady().messagesToSend.first
        #expect(answer?.term == cluster.nodes[newLeader].term)
        cluster.nodes[0].step(answer!)
        #expect(cluster.nodes[0].role == .follower)
        #expect(cluster.nodes[0].term == cluster.nodes[newLeader].term)
    }

    @Test func isolatedNodeDoesNotRaiseItsTermWithPreVote() {
        var cluster = TestCluster()
        cluster.elect(0)
        let term = cluster.nodes[0].term
        cluster.isolate(2)
        cluster.tick(100)
        #expect(cluster.nodes[2].term == term, "pre-votes went unanswered, so the term stayed")
        #expect(cluster.nodes[2].role == .preCandidate)
        cluster.heal()
        cluster.tick(3)
        #expect(cluster.nodes[0].role == .leader, "the rejoining node did not disrupt the leader")
        #expect(cluster.nodes[0].term == term)
        #expect(cluster.nodes[2].role == .follower && cluster.nodes[2].leader == node(0))
    }

    @Test func withoutPreVoteAnIsolatedNodeDeposesTheLeaderWhenItReturns() {
        var settings = TestSettings()
        settings.preVote = false
        settings.checkQuorum = false
        var cluster = TestCluster(settings: settings)
        cluster.elect(0)
        let term = cluster.nodes[0].term
        cluster.isolate(2)
        cluster.tick(100)
        #expect(cluster.nodes[2].term > term)
        cluster.heal()
        cluster.tick(3)
        #expect(cluster.nodes[0].term > term, "what pre-vote prevents")
    }

    @Test func nodeThatHearsALeaderIgnoresVoteRequests() {
        var cluster = TestCluster()
        cluster.elect(0)
        let term = cluster.nodes[0].term
        cluster.nodes[1].step(RaftMessage(source: node(2), target: node(1), term: term.next, body: .voteRequest(request(9, 9))))
        #expect(cluster.nodes[1].term == term, "within its lease a follower does not even move to the new term")
        #expect(cluster.nodes[1].takeReady().messagesToSend.isEmpty)
    }

    @Test func splitVoteEndsInALaterElection() {
        var cluster = TestCluster()
        cluster.nodes[0].campaign()
        cluster.nodes[1].campaign()
        cluster.deliverAll()
        cluster.tick(60)
        #expect(cluster.nodes.count { $0.role == .leader } == 1)
    }

    @Test func singleNodeGroupLeadsAndCommitsAlone() {
        var core = RaftCore(config: makeConfig(0, members: 1), restoring: DurableState(), seed: 3)
        core.campaign()
        #expect(core.role == .leader)
        #expect(core.propose([7]) == .accepted(index: LogIndex(2), term: Term(1)))
        let written = core.takeReady()
        #expect(written.entriesToPersist.map(\.kind) == [.noop, .normal])
        #expect(written.committed == nil, "not committed before it is durable")
        #expect(core.takeReady().committed == LogIndex(1)..<LogIndex(3), "durable on the leader, a quorum of one")
        #expect(core.takeReady().isEmpty)
    }

    @Test func roleChangesAreReported() {
        var cluster = TestCluster()
        cluster.elect(0)
        #expect(cluster.readies[0].compactMap(\.roleChange).last == RoleChange(role: .leader, term: Term(1), leader: node(0)))
        #expect(cluster.readies[1].compactMap(\.roleChange).last == RoleChange(role: .follower, term: Term(1), leader: node(0)))
    }
}
