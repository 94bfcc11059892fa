#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import NIOCore
import NIOPosix
import Raft
import Replication
import Testing
import TestSupport

/// Three in-process DLedger members over real stores, the real codec and a loopback transport that can cut a
/// member off: one leader takes writes and answers a put once a quorum committed it; followers refuse puts and
/// hold the leader's bytes at the leader's offsets; a leader cut off times its puts out and steps down, a new one
/// keeps every acknowledged message, and the old one, healed, cuts what never committed; a restarted member
/// catches up.
@Suite(.serialized) struct DLedgerGroupTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// Every member's log holds the same bytes up to the shortest end, and `acknowledged` appear exactly once each.
    func expectConverged(_ members: [Member], acknowledged: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let converged = eventually(seconds: 20) {
            let ends = Set(members.map { $0.store!.commitLog.wroteOffset })
            return ends.count == 1 && members.allSatisfy { $0.store!.dispatchBehindBytes == 0 }
        }
        #expect(converged, "ends \(members.map { $0.store!.commitLog.wroteOffset })", sourceLocation: sourceLocation)
        let first = members[0].store!.commitLog
        for member in members.dropFirst() {
            #expect(sameBytes(first, member.store!.commitLog, from: first.minOffset, to: first.wroteOffset, sourceLocation: sourceLocation))
        }
        for member in members {
            let bodies = member.bodies()
            let counts = Dictionary(bodies.map { ($0, 1) }, uniquingKeysWith: +)
            let missing = acknowledged.filter { counts[$0] != 1 }
            #expect(missing.isEmpty, "\(member.name) lacks or repeats \(missing.prefix(5))", sourceLocation: sourceLocation)
            #expect(member.store!.maxOffset(topic: "DL", queueID: 0) == Int64(bodies.count), "\(member.name)'s queue", sourceLocation: sourceLocation)
        }
    }

    @Test func aGroupElectsOneLeaderWhoseAcknowledgedPutsEveryMemberHolds() throws {
        let transport = LoopbackTransport()
        let members = try makeGroup(transport)
        defer { for member in members { member.close() } }
        let leader = try #require(writableLeader(members))
        var acknowledged: [String] = []
        for index in 0..<300 {
            let status = leader.put("m-\(index)", group: group)
            #expect(status == .putOK, "put \(index): \(status)")
            if status == .putOK { acknowledged.append("m-\(index)") }
        }
        for follower in members where follower !== leader {
            #expect(follower.put("refused", group: group) == .serviceNotAvailable)
        }
        expectConverged(members, acknowledged: acknowledged)
    }

    @Test func aCutOffLeaderTimesOutStepsDownAndCutsWhatNeverCommitted() throws {
        let transport = LoopbackTransport()
        let members = try makeGroup(transport)
        defer { for member in members { member.close() } }
        let old = try #require(writableLeader(members))
        var acknowledged: [String] = []
        for index in 0..<50 where old.put("before-\(index)", group: group) == .putOK { acknowledged.append("before-\(index)") }
        #expect(acknowledged.count == 50)
        transport.isolate(old.address)
        // Puts on the cut-off leader are appended there but never commit: they time out, or are refused once it
        // stepped down (check-quorum).
        var lost = 0
        for index in 0..<5 {
            let status = old.put("orphan-\(index)", group: group)
            #expect(status != .putOK, "orphan-\(index) cannot commit without a quorum")
            if status == .inSyncReplicasNotEnough { lost += 1 }
        }
        #expect(lost >= 1, "at least the first orphan was appended and waited")
        let others = members.filter { $0 !== old }
        let new = try #require(writableLeader(others))
        for index in 0..<50 where new.put("after-\(index)", group: group) == .putOK { acknowledged.append("after-\(index)") }
        #expect(acknowledged.count == 100)
        #expect(eventually(seconds: 10) { !old.writable })
        transport.heal()
        expectConverged(members, acknowledged: acknowledged)
        #expect(!old.bodies().contains { $0.hasPrefix("orphan-") }, "the old leader cut the puts that never committed")
    }

    @Test func aRestartedMemberRecoversAndCatchesUp() throws {
        let transport = LoopbackTransport()
        let members = try makeGroup(transport)
        defer { for member in members { member.close() } }
        let leader = try #require(writableLeader(members))
        var acknowledged: [String] = []
        acknowledged += (0..<100).compactMap { putOnLeader(members, "a-\($0)", group: group) }
        let follower = try #require(members.first { $0 !== leader })
        follower.close()
        acknowledged += (0..<100).compactMap { putOnLeader(members, "b-\($0)", group: group) }
        try follower.open()
        #expect(acknowledged.count == 200)
        expectConverged(members, acknowledged: acknowledged)
        // The whole group restarts: every member recovers its log and a leader takes writes again.
        for member in members { member.close() }
        for member in members { try member.open() }
        let again = try #require(putOnLeader(members, "c-0", group: group), "a leader takes writes again")
        expectConverged(members, acknowledged: acknowledged + [again])
    }

    /// With tiny compaction limits, every member drops applied entries from memory and rewrites its Raft log file;
    /// a member that was down catches up from the leader's log (the leader never compacts past its match), and
    /// the whole group restarts from compacted files (recovery starts above index 1, the commit log holds the rest).
    @Test func aCompactedGroupCatchesUpAMemberAndRestarts() throws {
        let transport = LoopbackTransport()
        let members = try makeGroup(transport) { settings in
            settings.raftLogKeepEntriesMax = 20
            settings.raftLogFileBytesMax = 8 << 10
        }
        defer { for member in members { member.close() } }
        let leader = try #require(writableLeader(members))
        var acknowledged: [String] = []
        acknowledged += (0..<200).compactMap { putOnLeader(members, "a-\($0)", group: group) }
        #expect(eventually(seconds: 20) {
            members.allSatisfy { member in member.server.map { $0.status().fileCompactedIndex > 0 } ?? false }
        }, "every member compacts its file: \(members.map { $0.server?.status().fileCompactedIndex ?? 0 })")
        let follower = try #require(members.first { $0 !== leader })
        follower.close()
        acknowledged += (0..<100).compactMap { putOnLeader(members, "b-\($0)", group: group) }
        try follower.open()
        #expect(acknowledged.count == 300)
        expectConverged(members, acknowledged: acknowledged)
        for member in members { member.close() }
        for member in members { try member.open() }
        let again = try #require(putOnLeader(members, "c-0", group: group), "a leader takes writes again")
        expectConverged(members, acknowledged: acknowledged + [again])
        for member in members { #expect(member.server!.status().compactedIndex > 0, "\(member.name) restored a compacted log") }
    }
}
