import Testing

@testable import bench

/// The chaos checker on hand-made histories: what counts as lost, duplicated, allowed, and how long a fault's
/// outage lasted. Each test builds a history whose right answer is known and would be missed by a checker that
/// counted the wrong answers, the wrong window or the wrong end of a send.
@Suite struct ChaosCheckTests {
    static let ms: UInt64 = 1_000_000

    static func send(_ key: String, _ sentMillis: UInt64, _ answeredMillis: UInt64, _ answer: ChaosAnswer) -> ChaosSend {
        ChaosSend(key: key, sentAt: sentMillis * ms, answeredAt: answeredMillis * ms, answer: answer)
    }

    static func fault(_ kind: FaultKind, _ atMillis: UInt64, healed: UInt64? = nil) -> ChaosFault {
        ChaosFault(kind: kind, node: "n0", injectedAt: atMillis * ms, healedAt: healed.map { $0 * ms })
    }

    @Test func anAcknowledgedKeyNeverReadIsLostAndOnlyThat() {
        let sends = [Self.send("a", 0, 1, .ok), Self.send("b", 1, 2, .ok), Self.send("c", 2, 3, .failed), Self.send("d", 3, 4, .unknown)]
        let verdict = ChaosCheck.verdict(sends: sends, consumed: ["a", "d"], faults: [])
        #expect(verdict.lost == ["b"], "b was acknowledged and not read; c failed and d is unknown, so neither is lost")
        #expect(verdict.acknowledged == 2 && verdict.counts[.failed] == 1 && verdict.counts[.unknown] == 1)
        #expect(verdict.unknownFound == 1 && verdict.failedFound == 0)
        #expect(verdict.duplicated.isEmpty && verdict.unexpected == 0)
    }

    @Test func aKeyReadTwiceIsDuplicatedOnceAndAKeyNobodySentIsUnexpected() {
        let sends = [Self.send("a", 0, 1, .ok), Self.send("b", 1, 2, .failed)]
        let verdict = ChaosCheck.verdict(sends: sends, consumed: ["a", "a", "a", "b", "b", "zz"], faults: [])
        #expect(verdict.duplicated == ["a", "b"], "each repeated key once, whatever its answer")
        #expect(verdict.lost.isEmpty && verdict.failedFound == 1 && verdict.unexpected == 1)
    }

    @Test func recoveryRunsFromTheFirstFailedSendToTheFirstAcknowledgedSendAfterIt() {
        // Fault at 100 ms. A send at 90 ms was answered OK at 105 ms (before the failure: not the recovery).
        // Sends at 110 and 130 fail; one sent at 120 ms is answered OK at 400 ms (sent after the first failure: it
        // ends the outage at 400); one sent at 300 ms is OK at 310 ms, which is earlier: that one ends it. One sent
        // at 95 ms (before the failure) is answered OK at 150 ms: a slow answer to an old send ends nothing.
        let sends = [Self.send("a", 90, 105, .ok), Self.send("s", 95, 150, .ok), Self.send("b", 110, 111, .failed), Self.send("c", 130, 140, .unknown),
                     Self.send("d", 120, 400, .ok), Self.send("e", 300, 310, .ok)]
        let recoveries = ChaosCheck.recoveries(sends: sends, faults: [Self.fault(.kill, 100, healed: 200)])
        #expect(recoveries.count == 1)
        #expect(recoveries[0].firstFailureAt == 110 * Self.ms)
        #expect(recoveries[0].recoveredAt == 310 * Self.ms)
        #expect(recoveries[0].millis == 200)
    }

    @Test func aSendStuckBeforeTheFaultCountsFromTheFault() {
        // Sent at 50 ms, before the fault at 100 ms, and timed out at 2050 ms: the outage starts at the fault.
        let sends = [Self.send("a", 50, 2_050, .unknown), Self.send("b", 2_100, 2_110, .ok)]
        let recoveries = ChaosCheck.recoveries(sends: sends, faults: [Self.fault(.suspend, 100)])
        #expect(recoveries[0].firstFailureAt == 100 * Self.ms)
        #expect(recoveries[0].millis == 2_010)
    }

    @Test func aStrayFailureNextToTheFaultDoesNotStandForTheOutage() {
        // Fault at 100 ms. A send made at 95 fails at 101 (a stray answer, counted from 100); the next one, made at
        // 101, is acknowledged at 102. Then every send from 110 to 3000 fails, and one made at 3010 is acknowledged
        // at 3020: the outage is 110 → 3020, not the 2 ms of the stray failure.
        var sends = [Self.send("stray", 95, 101, .unknown), Self.send("ok", 101, 102, .ok)]
        for at in stride(from: 110 as UInt64, through: 3_000, by: 10) { sends.append(Self.send("f\(at)", at, at + 2_000, .unknown)) }
        sends.append(Self.send("back", 3_010, 3_020, .ok))
        let recoveries = ChaosCheck.recoveries(sends: sends, faults: [Self.fault(.leaderKill, 100)])
        #expect(recoveries[0].firstFailureAt == 110 * Self.ms)
        #expect(recoveries[0].millis == 2_910)
    }

    @Test func failuresBelongToTheFaultWhoseWindowTheyAreAnsweredIn() {
        // Two faults, at 100 and 1000 ms. The first causes no failure; the second one does.
        let sends = [Self.send("a", 150, 160, .ok), Self.send("b", 1_010, 1_020, .failed), Self.send("c", 1_500, 1_600, .ok)]
        let recoveries = ChaosCheck.recoveries(sends: sends, faults: [Self.fault(.kill, 1_000), Self.fault(.partition, 100)])
        #expect(recoveries.map(\.fault.kind) == [.partition, .kill], "in injection order")
        #expect(recoveries[0].firstFailureAt == nil && recoveries[0].millis == nil)
        #expect(recoveries[1].millis == 590)
    }

    @Test func aFaultWithNoAcknowledgedSendAfterItsFailureIsNotRecovered() {
        let sends = [Self.send("a", 10, 20, .ok), Self.send("b", 110, 120, .failed)]
        let verdict = ChaosCheck.verdict(sends: sends, consumed: ["a"], faults: [Self.fault(.leaderKill, 100)])
        let summary = verdict.summaries(kinds: [.leaderKill, .kill])
        #expect(summary[0] == RecoverySummary(kind: .leaderKill, faults: 1, impacted: 1, unrecovered: 1, p50Millis: nil, maxMillis: nil))
        #expect(summary[1] == RecoverySummary(kind: .kill, faults: 0, impacted: 0, unrecovered: 0, p50Millis: nil, maxMillis: nil))
    }

    @Test func summariesTakeTheLowerMedianAndTheMaximumOfTheImpactedFaults() {
        var sends: [ChaosSend] = []
        var faults: [ChaosFault] = []
        // Three kills at 0, 10 000 and 20 000 ms with outages of 300, 100 and 200 ms; a fourth with no failure.
        for (index, outage) in [300, 100, 200].enumerated() {
            let at = UInt64(index) * 10_000
            faults.append(Self.fault(.kill, at))
            sends.append(Self.send("f\(index)", at + 1, at + 2, .failed))
            sends.append(Self.send("o\(index)", at + 2, at + 1 + UInt64(outage), .ok))
        }
        faults.append(Self.fault(.kill, 30_000))
        let summary = ChaosCheck.verdict(sends: sends, consumed: ["o0", "o1", "o2"], faults: faults).summaries(kinds: [.kill])[0]
        #expect(summary.faults == 4 && summary.impacted == 3 && summary.unrecovered == 0)
        #expect(summary.p50Millis == 200 && summary.maxMillis == 300)
    }

    @Test func theScheduleIsSeededAndCoversEveryKindBeforeRepeating() {
        let kinds: [FaultKind] = [.kill, .suspend, .leaderKill]
        let first = ChaosSchedule.make(seed: 7, kinds: kinds, interval: 5, pause: 2, duration: 33, nodes: 3)
        #expect(first == ChaosSchedule.make(seed: 7, kinds: kinds, interval: 5, pause: 2, duration: 33, nodes: 3))
        #expect(first.map(\.atSeconds) == [5, 10, 15, 20, 25, 30], "the last fault and its pause end before 33 s")
        #expect(Set(first.prefix(3).map(\.kind)) == Set(kinds) && Set(first.suffix(3).map(\.kind)) == Set(kinds))
        #expect(first.allSatisfy { ($0.node == nil) == $0.kind.targetsLeader })
        #expect(first != ChaosSchedule.make(seed: 8, kinds: kinds, interval: 5, pause: 2, duration: 33, nodes: 3))
    }

    @Test func aReplicaLackingAnAcknowledgedKeyOrHoldingItTwiceIsReported() {
        let check = ChaosCheck.replica("n1", bodies: ["a", "x", "b", "b"], acknowledged: ["a", "b", "c"])
        #expect(check == ReplicaCheck(name: "n1", records: 4, missing: ["c"], repeated: 1))
    }

    /// The verdict said plainly: a lost acknowledged message, or a log lacking one where the mode promises every
    /// log holds all, is BROKEN (and the run exits 1); where the mode does not promise it, the log's lack is only
    /// reported.
    @Test func aLostMessageOrAShortLogBreaksThePromiseOnlyWhereTheModeMakesIt() {
        func result(consumed: [String], replica: [String], everyLogHoldsAll: Bool) -> ChaosResult {
            let sends = [Self.send("a", 0, 1, .ok), Self.send("b", 1, 2, .ok)]
            let replicas = [ChaosCheck.replica("slave", bodies: replica, acknowledged: ["a", "b"])]
            let outcome = ChaosOutcome(started: 0, ended: 10 * Self.ms, sends: sends, consumed: consumed, outOfOrder: nil, replicas: replicas, faults: [],
                                       skippedFaults: [], skippedSends: 0, interrupted: false)
            return ChaosResult(label: "test", guarantee: ChaosGuarantee(claim: "", promisesNoLoss: true, everyLogHoldsAll: everyLogHoldsAll),
                               seed: 1, kinds: [.kill], plan: [], outcome: outcome, settings: "")
        }
        let kept = result(consumed: ["a", "b"], replica: ["a", "b"], everyLogHoldsAll: true)
        #expect(!kept.brokePromise && kept.verdictLine.hasPrefix("KEPT: all 2 "))
        let lost = result(consumed: ["a"], replica: ["a", "b"], everyLogHoldsAll: true)
        #expect(lost.brokePromise && lost.verdictLine.hasPrefix("BROKEN: 1 of 2 ") && lost.verdictLine.hasSuffix("b"))
        let shortLog = result(consumed: ["a", "b"], replica: ["a"], everyLogHoldsAll: true)
        #expect(shortLog.brokePromise && shortLog.verdictLine.hasPrefix("BROKEN: all 2 acknowledged messages were read back, but slave"))
        let asyncSlave = result(consumed: ["a", "b"], replica: ["a"], everyLogHoldsAll: false)
        #expect(!asyncSlave.brokePromise && asyncSlave.replicaLine.contains("slave 1 records, 1 acknowledged missing"))
    }

    @Test func anOrderlySendReadAfterALaterOneOfItsQueueIsOutOfOrder() {
        func read(_ queue: Int32, _ key: String) -> ConsumedMessage { ConsumedMessage(queue: queue, key: key) }
        // Queue 0: 0, 1, 3, 2 (2 after 3: one), 4. Queue 1: 0, 2 (a gap is no disorder), 1 (one). Queue 2: in order.
        // A key of another shape, or one naming another queue, is not judged.
        let consumed = [read(0, "r-1-q0-0"), read(0, "r-1-q0-1"), read(0, "r-1-q0-3"), read(0, "r-1-q0-2"), read(0, "r-1-q0-4"),
                        read(1, "r-1-q1-0"), read(1, "r-1-q1-2"), read(1, "r-1-q1-1"), read(2, "r-1-q2-0"), read(2, "r-1-q2-5"),
                        read(2, "r-1-7"), read(2, "r-1-q1-0")]
        #expect(ChaosCheck.outOfOrder(consumed) == [0: 1, 1: 1, 2: 0])
    }

    @Test func anUnknownFaultIsRefusedWithTheKindsThereAre() {
        #expect(throws: (any Error).self) { try FaultKind.parseList("kill,meteor") }
        #expect(throws: (any Error).self) { try FaultKind.parseList("") }
        #expect((try? FaultKind.parseList("kill, leader-suspend,kill")) == [.kill, .leaderSuspend])
    }

    /// `power` hits a node the schedule draws, `leader-power` whichever leads when it is due; only those two need
    /// powerfs (so `--faults kill,suspend` never asks for FUSE).
    @Test func powerFaultsParseAndOnlyTheyNeedPowerFS() throws {
        #expect(try FaultKind.parseList("power,leader-power") == [.power, .leaderPower])
        #expect(FaultKind.allCases.filter(\.cutsPower) == [.power, .leaderPower])
        let plan = ChaosSchedule.make(seed: 3, kinds: [.power, .leaderPower], interval: 5, pause: 2.5, duration: 30, nodes: 3)
        #expect(plan.count == 5 && plan.filter { $0.kind == .leaderPower }.allSatisfy { $0.node == nil })
        #expect(plan.filter { $0.kind == .power }.allSatisfy { $0.node != nil })
        #expect(plan == ChaosSchedule.make(seed: 3, kinds: [.power, .leaderPower], interval: 5, pause: 2.5, duration: 30, nodes: 3))
    }

    /// Under power cuts the promise follows the flush mode: what was fdatasynced before the acknowledgement (DLedger's
    /// Raft log, a master's commit log under SYNC_FLUSH) survives; under ASYNC_FLUSH nothing is promised (the run
    /// reports what was lost without calling it broken). Without power cuts every mode promises no loss, as before.
    @Test func underPowerCutsOnlySyncFlushPromisesNoLoss() {
        let dledgerSync = ChaosGuarantee.dledger(syncFlush: true, power: true)
        #expect(dledgerSync.promisesNoLoss && dledgerSync.everyLogHoldsAll)
        let dledgerAsync = ChaosGuarantee.dledger(syncFlush: false, power: true)
        #expect(!dledgerAsync.promisesNoLoss && !dledgerAsync.everyLogHoldsAll && dledgerAsync.claim.contains("not promised"))
        #expect(ChaosGuarantee.dledger(syncFlush: false, power: false).promisesNoLoss)
        let syncMaster = ChaosGuarantee.masterSlave(.sync, syncFlush: true, power: true)
        #expect(syncMaster.promisesNoLoss && syncMaster.everyLogHoldsAll)
        let syncMasterAsyncFlush = ChaosGuarantee.masterSlave(.sync, syncFlush: false, power: true)
        #expect(!syncMasterAsyncFlush.promisesNoLoss && !syncMasterAsyncFlush.everyLogHoldsAll)
        #expect(ChaosGuarantee.masterSlave(.sync, syncFlush: false, power: false).promisesNoLoss)
        let asyncMaster = ChaosGuarantee.masterSlave(.async, syncFlush: true, power: true)
        #expect(asyncMaster.promisesNoLoss && !asyncMaster.everyLogHoldsAll)
        #expect(!ChaosGuarantee.masterSlave(.async, syncFlush: false, power: true).promisesNoLoss)
        #expect(!ChaosGuarantee.masterSlave(.none, syncFlush: false, power: true).promisesNoLoss)
    }

    /// A lost message under a mode that does not promise it is reported as allowed, not as a broken promise.
    @Test func aLossTheModeDoesNotPromiseIsReportedNotBroken() {
        let outcome = ChaosOutcome(started: 0, ended: 10, sends: [Self.send("a", 0, 1, .ok), Self.send("b", 1, 2, .ok)], consumed: ["a"],
                                   replicas: [], faults: [], skippedFaults: [], skippedSends: 0, interrupted: false)
        let result = ChaosResult(label: "test", guarantee: .masterSlave(.sync, syncFlush: false, power: true), seed: 1, kinds: [.power],
                                 plan: [], outcome: outcome, settings: "")
        #expect(!result.brokePromise && result.verdictLine.hasPrefix("LOST (allowed by this mode): 1 of 2 "))
    }

    @Test func aPowerCutIsDescribedByWhatWasUnsynced() {
        let line = "frozen torn=/commitlog/00000000000000000000[4096,8704)of[4096,12288) volatile_bytes=12288 fsync=3 fsyncdir=2 writes=9 synced_bytes=4096"
        #expect(ChaosInjector.describeCut(line) == "unsynced 12288 bytes, torn /commitlog/00000000000000000000[4096,8704)of[4096,12288)")
        #expect(ChaosInjector.describeCut("frozen oddly") == "frozen oddly")
    }
}
