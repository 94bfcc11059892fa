@testable import CommitLog
import Testing

/// io_uring SYNC_FLUSH rounds leave in the order they started, whatever order their syncs complete in.
@Suite struct RingRoundsTests {
    private func round(lane: Int, target: UInt64) -> RingRounds.Round {
        RingRounds.Round(lane: lane, target: target, storeTimestamp: 0, startedNanos: 0, result: nil, synced: true)
    }

    @Test func aLaterRoundWhoseSyncCompletesFirstWaitsForTheEarlierOne() {
        var rounds = RingRounds(lanes: 2)
        rounds.start(round(lane: rounds.freeLane, target: 100))
        #expect(rounds.freeLane == 1)
        rounds.start(round(lane: rounds.freeLane, target: 200))
        #expect(!rounds.hasRoom)
        let laterCompleted = rounds.complete(lane: 1, result: 0)
        #expect(laterCompleted)
        let early = rounds.popDecided()
        #expect(early == nil, "decided before the round that started first")
        let earlierCompleted = rounds.complete(lane: 0, result: -5)
        #expect(earlierCompleted)
        let first = rounds.popDecided()
        let second = rounds.popDecided()
        #expect(first?.round.target == 100)
        #expect(first?.result == -5)
        #expect(second?.round.target == 200)
        #expect(second?.result == 0)
        #expect(rounds.isEmpty)
        let stray = rounds.complete(lane: 0, result: 0)
        #expect(!stray, "a completion without a round in flight is ignored")
    }

    @Test func oneLaneHoldsOneRound() {
        var rounds = RingRounds(lanes: 1)
        rounds.start(round(lane: rounds.freeLane, target: 10))
        #expect(!rounds.hasRoom)
        let completed = rounds.complete(lane: 0, result: 0)
        #expect(completed)
        let decided = rounds.popDecided()
        #expect(decided?.round.target == 10)
        #expect(rounds.hasRoom)
        #expect(rounds.freeLane == 0)
    }

    @Test func settingsRefuseLaneCountsTheWaitersCannotHold() {
        for lanes in [0, 3] {
            var settings = CommitLogSettings(storePathRootDir: "/nonexistent")
            settings.groupCommitLanes = lanes
            #expect(throws: StoreError.self, "groupCommitLanes \(lanes) accepted") { try settings.validated() }
        }
    }
}
