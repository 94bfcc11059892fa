@testable import Raft
import Testing

/// The simulated disk: what a crash keeps is what the durability claims rest on.
@Suite struct SimDiskTests {
    private func entry(_ index: UInt64) -> LogEntry { LogEntry(index: LogIndex(index), term: Term(1), payload: [UInt8(index)]) }

    @Test func syncedWritesSurviveEveryCrash() {
        for seed: UInt64 in 0..<200 {
            var disk = SimDisk()
            disk.write(.append([entry(1), entry(2)]))
            disk.write(.hardState(HardState(term: Term(1), vote: NodeID(0), commit: LogIndex(2))))
            disk.sync()
            disk.write(.append([entry(3), entry(4), entry(5)]))
            disk.write(.hardState(HardState(term: Term(2))))
            var rng = SplitMix64(seed: seed)
            disk.crash(&rng, tearPerMille: 500)
            #expect(disk.durable.entries.prefix(2) == [entry(1), entry(2)])
            #expect(disk.durable.hardState.term >= Term(1))
            #expect(disk.durable.entries == disk.current.entries)
            if disk.durable.hardState.term == Term(2) {
                #expect(disk.durable.entries.count == 5, "the hard state is written after the entries, so they survived")
            }
        }
    }

    @Test func crashKeepsAPrefixOfUnsyncedWritesAndSometimesTearsTheNext() {
        var lengths = Set<Int>()
        for seed: UInt64 in 0..<200 {
            var disk = SimDisk()
            disk.write(.append([entry(1)]))
            disk.write(.append([entry(2), entry(3), entry(4)]))
            var rng = SplitMix64(seed: seed)
            disk.crash(&rng, tearPerMille: 500)
            lengths.insert(disk.durable.entries.count)
            #expect(disk.durable.entries == Array([entry(1), entry(2), entry(3), entry(4)].prefix(disk.durable.entries.count)))
        }
        #expect(lengths == [0, 1, 2, 3, 4], "nothing, the first write, a torn second write, or both")
    }

    @Test func truncateThenAppendReplacesTheSuffix() {
        var disk = SimDisk()
        disk.write(.append([entry(1), entry(2), entry(3)]))
        disk.sync()
        let replacement = LogEntry(index: LogIndex(2), term: Term(2))
        disk.write(.truncate(from: LogIndex(2)))
        disk.write(.append([replacement]))
        #expect(disk.current.entries == [entry(1), replacement])
        #expect(disk.durable.entries.count == 3, "not durable before the sync")
        disk.sync()
        #expect(disk.durable.entries == [entry(1), replacement])
    }
}
