@_spi(Testing) import Raft
import Testing

/// Replication: matching, rejection and back-off, truncation, commit rules and the limits on what is in flight.
@Suite struct ReplicationTests {
    private func appends(in ready: Ready, to target: NodeID) -> [AppendRequest] {
        ready.messagesToSend.compactMap { message in
            guard message.target == target, case .append(let request) = message.body else { return nil }
            return request
        }
    }

    @Test func proposalIsDroppedWhenNotLeader() {
        var cluster = TestCluster()
        #expect(cluster.propose(at: 1) == .dropped(.notLeader(leader: nil)))
        cluster.elect(0)
        #expect(cluster.propose(at: 1) == .dropped(.notLeader(leader: node(0))), "names the leader it knows")
        #expect(cluster.nodes[1].lastIndex == LogIndex(1), "nothing appended")
    }

    @Test func proposalCommitsOnAQuorumAndReachesEveryFollower() {
        var cluster = TestCluster()
        cluster.elect(0)
        #expect(cluster.propose(at: 0, [42]) == .accepted(index: LogIndex(2), term: Term(1)))
        cluster.deliverAll()
        #expect(cluster.nodes[0].commitIndex == LogIndex(2))
        cluster.tick(2)  // a heartbeat carries the commit to the followers
        for core in cluster.nodes {
            #expect(core.commitIndex == LogIndex(2))
            #expect(core.entry(at: LogIndex(2))?.payload == [42])
        }
        #expect(cluster.readies[0].compactMap(\.committed).last?.upperBound == LogIndex(3))
    }

    @Test func followerRejectsAGapAndTheLeaderBacksOffOverWholeTerms() {
        // The follower holds 20 entries of t2 the leader never had; the leader holds 30 of t3 after #1.
        let leaderLog = entries(terms: [1] + Array(repeating: 3, count: 30))
        let followerLog = entries(terms: [1] + Array(repeating: 2, count: 20))
        var cluster = TestCluster(durable: [
            DurableState(hardState: HardState(term: Term(3)), entries: leaderLog),
            DurableState(hardState: HardState(term: Term(3)), entries: followerLog),
            DurableState(hardState: HardState(term: Term(3)), entries: leaderLog),
        ])
        cluster.isolate(2)
        cluster.elect(0)
        var rejections = 0
        for ready in cluster.readies[1] {
            for message in ready.messagesToSend {
                if case .appendResponse(.rejected) = message.body { rejections += 1 }
            }
        }
        #expect(rejections <= 2, "one rejection skips every entry of t2, not one entry at a time (\(rejections))")
        #expect(cluster.nodes[1].lastIndex == cluster.nodes[0].lastIndex)
        #expect(cluster.nodes[1].term(at: LogIndex(21)) == Term(3))
        #expect(cluster.nodes[0].commitIndex == cluster.nodes[0].lastIndex)
    }

    @Test func divergentFollowerTruncatesItsUncommittedSuffix() {
        var cluster = TestCluster(durable: [
            DurableState(hardState: HardState(term: Term(3), commit: LogIndex(1)), entries: entries(terms: [1, 3])),
            DurableState(hardState: HardState(term: Term(3), commit: LogIndex(1)), entries: entries(terms: [1, 2, 2, 2])),
            DurableState(hardState: HardState(term: Term(3), commit: LogIndex(1)), entries: entries(terms: [1, 3])),
        ])
        cluster.elect(0)
        let truncations = cluster.readies[1].compactMap(\.truncateFrom)
        #expect(truncations == [LogIndex(2)], "the t2 suffix goes, the committed #1 stays")
        let persisted = cluster.readies[1].first { $0.truncateFrom != nil }?.entriesToPersist.first
        #expect(persisted?.index == LogIndex(2), "the leader's entries follow the cut")
        #expect(cluster.nodes[1].lastIndex == LogIndex(3))
        #expect(cluster.nodes[1].term(at: LogIndex(2)) == Term(3))
        #expect(cluster.nodes[1].term(at: LogIndex(3)) == Term(4), "the new leader's no-op")
    }

    @Test func delayedShorterAppendDoesNotCutLaterEntries() {
        var follower = RaftCore(config: makeConfig(1, members: 3), restoring: DurableState(), seed: 1)
        let long = entries(terms: [1, 1, 1])
        let append = { (count: Int) in
            RaftMessage(source: node(0), target: node(1), term: Term(1), body: .append(AppendRequest(
                prevIndex: .zero, prevTerm: .zero, entries: Array(long.prefix(count)), commit: .zero)))
        }
        follower.step(append(3))
        _ = follower.takeReady()
        follower.step(append(1))
        let ready = follower.takeReady()
        #expect(ready.truncateFrom == nil)
        #expect(follower.lastIndex == LogIndex(3))
        #expect(ready.messagesToSend.first?.body == .appendResponse(.accepted(matchIndex: LogIndex(1))))
    }

    /// Raft's Figure 8 on three nodes. n0 holds #2 of t2, n2 holds #2 of t3, n1 holds only #1. n0 wins t4 with
    /// n1's vote, and replicates #2 of t2 to n1, one entry per message. A quorum now holds #2, but committing it
    /// would be wrong: n2 can still win t5 with n1's vote and overwrite it. Only the t4 no-op, once on a quorum,
    /// commits #2 with it.
    @Test(arguments: [false, true])
    func oldTermEntryCommitsOnlyWithAnEntryOfTheCurrentTerm(injectBug: Bool) {
        var settings = TestSettings()
        settings.appendBytesMax = 1  // one entry per append
        if injectBug { settings.bugs = .commitOldTermByCounting }
        var cluster = TestCluster(settings: settings, durable: [
            DurableState(hardState: HardState(term: Term(3)), entries: entries(terms: [1, 2])),
            DurableState(hardState: HardState(term: Term(3)), entries: entries(terms: [1])),
            DurableState(hardState: HardState(term: Term(3)), entries: entries(terms: [1, 3])),
        ])
        cluster.isolate(2)
        cluster.nodes[0].campaign()
        // Deliver until n1 acknowledges #2 (t2), but hold back the no-op #3 (t4).
        for _ in 0..<10 {
            cluster.collect()
            let batch = cluster.inFlight
            cluster.inFlight = []
            for message in batch where message.target != node(2) {
                // The first probe (after #2) is rejected, as n1 lacks #2; later no-op appends would be accepted.
                if case .append(let request) = message.body, request.entries.contains(where: { $0.term == Term(4) }),
                    cluster.nodes[1].lastIndex >= request.prevIndex
                {
                    continue
                }
                cluster.nodes[Int(message.target.rawValue)].step(message)
            }
        }
        #expect(cluster.nodes[0].role == .leader)
        #expect(cluster.nodes[0].replicationState(of: node(1))?.match == LogIndex(2))
        if injectBug {
            #expect(cluster.nodes[0].commitIndex == LogIndex(2), "the bug commits #2 of t2")
            // ...and n2 can still win t5 with n1's vote and overwrite the "committed" entry.
            cluster.isolate(0)
            cluster.cut.remove([1, 2])
            cluster.cut.remove([2, 1])
            cluster.tick(40, only: [1, 2])
            #expect(cluster.nodes[2].role == .leader)
            cluster.deliverAll()
            #expect(cluster.nodes[1].term(at: LogIndex(2)) == Term(3), "the entry n0 committed is gone")
        } else {
            #expect(cluster.nodes[0].commitIndex == .zero, "a quorum holding #2 of t2 is not enough")
            cluster.tick(6, only: [0, 1])  // the held-back no-op is sent again
            #expect(cluster.nodes[0].commitIndex == LogIndex(3), "the t4 no-op on a quorum commits #2 with it")
        }
    }

    @Test func replicationIsLimitedByInflightAppendsAndBytes() {
        var settings = TestSettings()
        settings.inflightAppendsMax = 2
        settings.appendBytesMax = 2 * (LogEntry.headerBytes + 10)  // two entries of 10 bytes per message
        var cluster = TestCluster(settings: settings)
        cluster.elect(0)
        for _ in 0..<10 { cluster.propose(at: 0, Array(repeating: 9, count: 10)) }
        let ready = cluster.nodes[0].takeReady()
        let sent = appends(in: ready, to: node(1))
        #expect(sent.count == 2, "two appends in flight, no more")
        #expect(sent.allSatisfy { $0.entries.count == 2 })
        // One acknowledgement frees one slot.
        let ack = RaftMessage(source: node(1), target: node(0), term: Term(1), body: .appendResponse(.accepted(matchIndex: sent[0].lastIndex)))
        cluster.nodes[0].step(ack)
        let next = appends(in: cluster.nodes[0].takeReady(), to: node(1))
        #expect(next.count == 1)
        #expect(next.first?.prevIndex == sent[1].lastIndex, "pipelined: continues after what is in flight")
    }

    @Test func leaderDropsProposalsOverTheUncommittedBytesLimit() {
        var settings = TestSettings()
        settings.uncommittedBytesMax = 4 * (LogEntry.headerBytes + 100)
        var cluster = TestCluster(settings: settings)
        cluster.elect(0)
        cluster.isolate(0)
        var results: [ProposeResult] = []
        for _ in 0..<5 { results.append(cluster.propose(at: 0, Array(repeating: 1, count: 100))) }
        #expect(results.prefix(4).allSatisfy { if case .accepted = $0 { true } else { false } }, "\(results)")
        #expect(results[4] == .dropped(.uncommittedBytesOverLimit))
        cluster.heal()
        cluster.tick(2)
        #expect(cluster.propose(at: 0, Array(repeating: 1, count: 100)) != .dropped(.uncommittedBytesOverLimit), "committed bytes are released")
    }

    @Test func lostAppendIsResentAfterHeartbeats() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.cut.insert([0, 1])
        cluster.propose(at: 0)
        cluster.deliverAll()
        cluster.cut = []
        #expect(cluster.nodes[1].lastIndex == LogIndex(1))
        cluster.tick(6)
        #expect(cluster.nodes[1].lastIndex == LogIndex(2))
        #expect(cluster.nodes[1].commitIndex == LogIndex(2))
    }

    @Test func heartbeatCommitIsCappedByTheFollowersMatch() {
        var cluster = TestCluster()
        cluster.elect(0)
        cluster.propose(at: 0)
        cluster.cut.insert([0, 2])
        cluster.deliverAll()
        cluster.nodes[0].tick()
        cluster.nodes[0].tick()
        let beats = cluster.nodes[0].takeReady().messagesToSend.filter { $0.target == node(2) }
        #expect(beats.map(\.body) == [.heartbeat(commit: LogIndex(1), compactable: LogIndex(1))], "n2 matched only the no-op")
    }
}

/// Bad input from a peer is dropped, never trusted and never a trap.
@Suite struct MalformedInputTests {
    private func follower() -> RaftCore {
        RaftCore(config: makeConfig(1, members: 3), restoring: DurableState(), seed: 1)
    }

    private func append(_ entries: [LogEntry], prevIndex: UInt64 = 0, term: UInt64 = 2) -> RaftMessage {
        RaftMessage(source: node(0), target: node(1), term: Term(term), body: .append(AppendRequest(
            prevIndex: LogIndex(prevIndex), prevTerm: .zero, entries: entries, commit: LogIndex(UInt64.max))))
    }

    @Test(arguments: [
        [LogEntry(index: LogIndex(1), term: Term(2)), LogEntry(index: LogIndex(3), term: Term(2))],  // a gap
        [LogEntry(index: LogIndex(1), term: Term(2)), LogEntry(index: LogIndex(2), term: Term(1))],  // term falls
        [LogEntry(index: LogIndex(1), term: Term(3))],  // past the sender's term
        [LogEntry(index: LogIndex(2), term: Term(2))],  // does not follow prevIndex
    ])
    func malformedAppendIsIgnored(entries: [LogEntry]) {
        var core = follower()
        core.step(append(entries))
        #expect(core.lastIndex == .zero)
        #expect(core.takeReady().messagesToSend.isEmpty)
    }

    @Test func hugeIndexesAndCommitsDoNotTrap() {
        var core = follower()
        core.step(append([], prevIndex: UInt64.max))
        let rejection = core.takeReady().messagesToSend.first?.body
        #expect(rejection == .appendResponse(.rejected(rejectedIndex: LogIndex(UInt64.max), hintIndex: .zero, hintTerm: .zero)))
        core.step(append([LogEntry(index: LogIndex(1), term: Term(2))]))
        #expect(core.commitIndex == LogIndex(1), "a commit past the log's end stops at its end")
        var cluster = TestCluster()
        cluster.elect(0)
        for body: RaftMessage.Body in [
            .appendResponse(.accepted(matchIndex: LogIndex(UInt64.max))),
            .appendResponse(.rejected(rejectedIndex: LogIndex(UInt64.max), hintIndex: LogIndex(UInt64.max), hintTerm: Term(9))),
            .heartbeat(commit: LogIndex(UInt64.max)),
        ] {
            cluster.nodes[0].step(RaftMessage(source: node(1), target: node(0), term: Term(1), body: body))
        }
        cluster.deliverAll()
        #expect(cluster.propose(at: 0) != .dropped(.notLeader(leader: node(0))))
        cluster.deliverAll()
        #expect(cluster.nodes[1].lastIndex == cluster.nodes[0].lastIndex, "replication carries on")
    }
}
