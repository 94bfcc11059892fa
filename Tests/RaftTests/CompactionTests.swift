@_spi(Testing) import Raft
import Testing

/// Compaction without snapshots: the compactable index is the lowest durable match of all members, followers
/// hear it, nobody compacts past it, a compacted log serves appends, elections and restarts, and a member that
/// lost its disk is reported instead of trapping the leader.
@Suite struct CompactionTests {
    /// A group of three with `count` entries committed and applied everywhere (leader n0 in t1).
    private func committedGroup(_ count: Int) -> TestCluster {
        var cluster = TestCluster()
        cluster.elect(0)
        for value in 0..<count { cluster.propose(at: 0, [UInt8(truncatingIfNeeded: value)]) }
        cluster.deliverAll()
        cluster.tick(2)  // a heartbeat carries the commit and the compactable index to the followers
        return cluster
    }

    @Test func compactableIndexIsTheLowestMatchOfAllMembersAndFollowersHearIt() {
        var cluster = committedGroup(5)
        #expect(cluster.nodes[0].compactableIndex == LogIndex(6), "every member holds the no-op and five entries")
        #expect(cluster.nodes[1].compactableIndex == LogIndex(6))
        #expect(cluster.nodes[2].compactableIndex == LogIndex(6))
        cluster.isolate(2)
        for value: UInt8 in 0..<4 { cluster.propose(at: 0, [value]) }
        cluster.deliverAll()
        cluster.tick(2)
        #expect(cluster.nodes[0].commitIndex == LogIndex(10), "n0 and n1 commit without n2")
        #expect(cluster.nodes[0].compactableIndex == LogIndex(6), "n2 holds only through #6")
        #expect(cluster.nodes[1].compactableIndex == LogIndex(6))
    }

    @Test func compactionStopsAtTheSafePointAndKeepsTheLastTerm() {
        var cluster = committedGroup(5)
        cluster.isolate(2)
        for value: UInt8 in 0..<4 { cluster.propose(at: 0, [value]) }
        cluster.deliverAll()
        cluster.tick(2)
        #expect(cluster.nodes[0].compact(through: LogIndex(10)) == LogIndex(6), "not past n2's match")
        #expect(cluster.nodes[0].snapshotIndex == LogIndex(6))
        #expect(cluster.nodes[0].entry(at: LogIndex(6)) == nil)
        #expect(cluster.nodes[0].term(at: LogIndex(6)) == Term(1), "the last compacted entry's term stays known")
        #expect(cluster.nodes[0].term(at: LogIndex(5)) == nil, "below it nothing is known")
        #expect(cluster.nodes[0].entry(at: LogIndex(7)) != nil)
        #expect(cluster.nodes[0].compact(through: LogIndex(3)) == LogIndex(6), "compaction never moves back")
    }

    @Test func compactionNeverPassesTheAppliedIndex() {
        var cluster = committedGroup(3)
        cluster.isolate(1)
        cluster.isolate(2)
        cluster.propose(at: 0, [9])  // not committed: no quorum
        cluster.deliverAll()
        #expect(cluster.nodes[0].compact(through: LogIndex(100)) == LogIndex(4))
        #expect(cluster.nodes[0].lastIndex == LogIndex(5))
    }

    @Test func laggingFollowerCatchesUpFromACompactedLeader() {
        var cluster = committedGroup(5)
        cluster.isolate(2)
        for value: UInt8 in 0..<20 { cluster.propose(at: 0, [value]) }
        cluster.deliverAll()
        cluster.tick(2)
        cluster.nodes[0].compact(through: LogIndex(100))
        cluster.nodes[1].compact(through: LogIndex(100))
        cluster.heal()
        cluster.tick(4)
        #expect(cluster.nodes[2].lastIndex == cluster.nodes[0].lastIndex)
        #expect(cluster.nodes[2].commitIndex == cluster.nodes[0].commitIndex)
        #expect(cluster.readies[0].allSatisfy { $0.rebuildNeeded.isEmpty })
    }

    @Test func compactedLogsRestoreElectAndCommit() {
        let state = DurableState(
            hardState: HardState(term: Term(2), commit: LogIndex(7)), snapshotIndex: LogIndex(5), snapshotTerm: Term(2),
            entries: [6, 7].map { LogEntry(index: LogIndex($0), term: Term(2), payload: [UInt8($0)]) }, applied: LogIndex(5))
        var cluster = TestCluster(durable: [state, state, state])
        #expect(cluster.nodes[0].lastIndex == LogIndex(7))
        #expect(cluster.nodes[0].term(at: LogIndex(5)) == Term(2))
        #expect(cluster.nodes[0].term(at: LogIndex(4)) == nil)
        cluster.elect(1)
        #expect(cluster.leader == 1)
        #expect(cluster.propose(at: 1, [42]) == .accepted(index: LogIndex(9), term: Term(3)))
        cluster.deliverAll()
        cluster.tick(2)
        for core in cluster.nodes { #expect(core.commitIndex == LogIndex(9)) }
        let applied = cluster.readies[0].compactMap(\.committed)
        #expect(applied.first?.lowerBound == LogIndex(6), "compacted entries are not applied again")
    }

    @Test func leaderReportsAMemberThatLostItsDiskAndServesTheOthers() {
        var cluster = committedGroup(5)
        for index in cluster.nodes.indices { cluster.nodes[index].compact(through: LogIndex(6)) }
        #expect(cluster.nodes[0].snapshotIndex == LogIndex(6))
        // n2 comes back with an empty disk: it needs #1...#6, which nobody holds any more.
        // The leader of the next term knows nothing of its match and probes it (a leader of the same term believes
        // its old match, and only stops getting answers it can use).
        cluster.nodes[2] = RaftCore(config: makeConfig(2, members: 3), restoring: DurableState(), seed: 5)
        cluster.elect(1)
        cluster.tick(6)
        let reports = cluster.readies[1].flatMap(\.rebuildNeeded)
        #expect(reports == [node(2)], "reported once: \(reports)")
        #expect(cluster.leader == 1, "n1 keeps leading")
        cluster.propose(at: 1, [7])
        cluster.deliverAll()
        #expect(cluster.nodes[1].commitIndex == LogIndex(8), "n0 and n1 still commit (after t2's no-op)")
        #expect(cluster.nodes[2].lastIndex == .zero)
        #expect(cluster.readies[2].flatMap(\.rebuildNeeded) == [node(2)], "n2 reports itself once")
    }

    @Test func aMemberThatLostItsDiskReportsItselfToALeaderOfTheSameTerm() {
        var cluster = committedGroup(5)
        for index in cluster.nodes.indices { cluster.nodes[index].compact(through: LogIndex(6)) }
        cluster.nodes[2] = RaftCore(config: makeConfig(2, members: 3), restoring: DurableState(), seed: 5)
        cluster.tick(4)  // n0 still leads t1 and trusts n2's old match; its heartbeat names the compactable index
        #expect(cluster.leader == 0)
        #expect(cluster.readies[2].flatMap(\.rebuildNeeded) == [node(2)])
    }

    @Test func aFollowerIgnoresALowerCompactableIndex() {
        var cluster = committedGroup(2)
        #expect(cluster.nodes[1].compactableIndex == LogIndex(3))
        cluster.nodes[1].step(RaftMessage(source: node(0), target: node(1), term: Term(1),
                                          body: .heartbeat(commit: LogIndex(3), compactable: LogIndex(1))))
        #expect(cluster.nodes[1].compactableIndex == LogIndex(3))
    }
}
