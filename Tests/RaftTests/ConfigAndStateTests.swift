@_spi(Testing) import Raft
import Testing

/// Config validation, restoring from disk, the generator, and the order promised by `Ready`.
@Suite struct ConfigAndStateTests {
    @Test func configRejectsLimitsThatCannotWork() {
        let members = [node(0), node(1), node(2)]
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(5), members: members) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: [node(0), node(0)]) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: members, electionTicks: 2, heartbeatTicks: 2) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: members, inflightAppendsMax: 0) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: members, appendBytesMax: 0) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: members, uncommittedBytesMax: 10) }
        #expect(throws: RaftConfigError.self) { try RaftConfig(id: node(0), members: members, preferredLeader: node(9)) }
        do {
            _ = try RaftConfig(id: node(0), members: members, inflightAppendsMax: 0)
        } catch {
            #expect(error.description == "RaftConfig.inflightAppendsMax: 0; allowed 1...10000")
        }
        let config = try? RaftConfig(id: node(1), members: [node(2), node(1), node(0)])
        #expect(config?.members == members, "sorted")
        #expect(config?.quorum == 2)
    }

    @Test func restoreReconcilesAHardStateOlderOrNewerThanTheLog() {
        // A commit past the log's end (a driver that broke the write order) is not trusted past the end.
        let ahead = DurableState(hardState: HardState(term: Term(5), vote: node(1), commit: LogIndex(9)), entries: entries(terms: [1, 2]))
        let first = RaftCore(config: makeConfig(0, members: 3), restoring: ahead, seed: 1)
        #expect(first.commitIndex == LogIndex(2))
        #expect(first.term == Term(5) && first.vote == node(1))
        // The entries of t4 reached the disk, the hard state moving to t4 did not.
        let behind = DurableState(hardState: HardState(term: Term(3), vote: node(2)), entries: entries(terms: [1, 4]))
        let second = RaftCore(config: makeConfig(0, members: 3), restoring: behind, seed: 1)
        #expect(second.term == Term(4))
        #expect(second.vote == nil)
    }

    @Test func restartReappliesCommittedEntriesAfterApplied() {
        let state = DurableState(hardState: HardState(term: Term(1), commit: LogIndex(3)), entries: entries(terms: [1, 1, 1]), applied: LogIndex(1))
        var core = RaftCore(config: makeConfig(0, members: 3), restoring: state, seed: 1)
        #expect(core.takeReady().committed == LogIndex(2)..<LogIndex(4))
        #expect(core.takeReady().isEmpty)
    }

    @Test func electionTimeoutsAreRandomizedAndReplayBySeed() {
        func ticksToCampaign(seed: UInt64) -> Int {
            var core = RaftCore(config: makeConfig(0, members: 3), restoring: DurableState(), seed: seed)
            for tick in 1...100 {
                core.tick()
                if core.role != .follower { return tick }
            }
            return 0
        }
        let timeouts = (0..<50 as Range<UInt64>).map { ticksToCampaign(seed: $0) }
        #expect(timeouts.allSatisfy { (10..<20).contains($0) })
        #expect(Set(timeouts).count > 5, "spread over the range")
        #expect(timeouts == (0..<50 as Range<UInt64>).map { ticksToCampaign(seed: $0) }, "a seed replays")
    }

    @Test func generatorIsUniformEnoughAndStable() {
        var rng = SplitMix64(seed: 42)
        var counts = Array(repeating: 0, count: 10)
        for _ in 0..<10_000 { counts[rng.index(below: 10)] += 1 }
        #expect(counts.allSatisfy { (850...1150).contains($0) }, "\(counts)")
        var again = SplitMix64(seed: 7)
        let first = again.next()
        var replay = SplitMix64(seed: 7)
        #expect(replay.next() == first)
    }

    @Test func messagesForOthersOrFromStrangersAreIgnored() {
        var core = RaftCore(config: makeConfig(0, members: 3), restoring: DurableState(), seed: 1)
        let request = VoteRequest(lastIndex: .zero, lastTerm: .zero, preVote: false, transfer: false)
        core.step(RaftMessage(source: node(1), target: node(2), term: Term(9), body: .voteRequest(request)))
        core.step(RaftMessage(source: node(8), target: node(0), term: Term(9), body: .voteRequest(request)))
        #expect(core.term == .zero)
        #expect(core.takeReady().isEmpty)
    }
}
