@_spi(Testing) import Raft
import Testing

/// Keeping and handing over leadership: check-quorum, transfer (TimeoutNow) and the preferred leader.
@Suite struct LeadershipTests {
    @Test func partitionedLeaderStepsDownAndStopsAcceptingWrites() {
        var cluster = TestCluster()
        cluster.elect(0)
        let term = cluster.nodes[0].term
        cluster.isolate(0)
        cluster.tick(9, only: [0])
        #expect(cluster.nodes[0].role == .leader, "less than an election timeout without a quorum")
        cluster.tick(1, only: [0])
        #expect(cluster.nodes[0].role == .follower)
        #expect(cluster.nodes[0].term == term, "stepping down does not raise the term")
        #expect(cluster.propose(at: 0) == .dropped(.notLeader(leader: nil)))
        #expect(cluster.readies[0].last?.roleChange == RoleChange(role: .follower, term: term, leader: nil))
    }

    @Test func leaderWithAQuorumKeepsLeading() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.isolate(2)
        cluster.tick(50)
        #expect(cluster.nodes[0].role == .leader)
        #expect(cluster.nodes[1].leader == node(0))
    }

    @Test func majorityElectsANewLeaderAfterThePartition() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.isolate(0)
        cluster.tick(40)
        #expect(cluster.nodes[0].role != .leader)
        #expect(cluster.leader == 1 || cluster.leader == 2)
        cluster.heal()
        cluster.tick(4)
        let leader = cluster.leader!
        #expect(cluster.nodes[0].leader == NodeID(UInt32(leader)), "the old leader follows the new one")
        #expect(cluster.nodes[0].lastIndex == cluster.nodes[leader].lastIndex)
    }

    @Test func leadershipTransferMovesLeadershipToACaughtUpTarget() {
        var cluster = TestCluster()
        cluster.elect(0)
        let term = cluster.nodes[0].term
        #expect(cluster.nodes[0].transferLeadership(to: node(2)) == .started)
        #expect(cluster.propose(at: 0) == .dropped(.transferInProgress))
        cluster.deliverAll()
        #expect(cluster.nodes[2].role == .leader)
        #expect(cluster.nodes[2].term == term.next)
        #expect(cluster.nodes[0].role == .follower && cluster.nodes[0].leader == node(2))
    }

    @Test func transferWaitsForALaggingTargetToCatchUp() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.cut.insert([0, 2])
        for _ in 0..<5 { cluster.propose(at: 0) }
        cluster.deliverAll()
        #expect(cluster.nodes[0].transferLeadership(to: node(2)) == .started)
        cluster.deliverAll()
        #expect(cluster.nodes[0].role == .leader, "no TimeoutNow before the target holds the whole log")
        cluster.cut = []
        cluster.tick(6)
        #expect(cluster.nodes[2].role == .leader)
        #expect(cluster.nodes[2].lastIndex >= LogIndex(6))
    }

    @Test func transferToAFarBehindTargetIsRejected() {
        var settings = TestSettings()
        settings.transferLagMax = 3
        var cluster = TestCluster(settings: settings)
        cluster.elect(0)
        cluster.cut.insert([0, 2])
        for _ in 0..<5 { cluster.propose(at: 0) }
        cluster.deliverAll()
        guard case .rejected = cluster.nodes[0].transferLeadership(to: node(2)) else {
            Issue.record("a target 5 entries behind, with at most 3 allowed, was accepted")
            return
        }
        #expect(cluster.nodes[0].transferLeadership(to: node(7)) != .started)
        #expect(cluster.nodes[1].transferLeadership(to: node(2)) != .started, "only the leader transfers")
    }

    @Test func transferThatDoesNotHappenIsAbandonedAfterAnElectionTimeout() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.cut.insert([0, 2])
        cluster.propose(at: 0)
        cluster.deliverAll()
        #expect(cluster.nodes[0].transferLeadership(to: node(2)) == .started)
        cluster.tick(10, only: [0])
        #expect(cluster.nodes[0].transferee == nil)
        #expect(cluster.nodes[0].role == .leader)
        #expect(cluster.propose(at: 0) != .dropped(.transferInProgress))
    }

    @Test func preferredLeaderTakesOverOnceCaughtUp() {
        var settings = TestSettings()
        settings.preferredLeader = node(2)
        var cluster = TestCluster(settings: settings)
        cluster.elect(0)
        cluster.cut.insert([0, 2])
        cluster.propose(at: 0)
        cluster.tick(4, only: [0, 1])
        #expect(cluster.nodes[0].role == .leader, "n2 is behind, so n0 keeps leading")
        cluster.cut = []
        cluster.tick(6)
        #expect(cluster.nodes[2].role == .leader)
        cluster.tick(30)
        #expect(cluster.nodes[2].role == .leader, "and stays leader")
    }
}
