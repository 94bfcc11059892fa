import Remoting

/// The checked result of a chaos run and its three renderings: the text table, JSON and the HTML report.
struct ChaosResult {
    let label: String
    let guarantee: ChaosGuarantee
    let seed: UInt64
    let kinds: [FaultKind]
    let plan: [PlannedFault]
    let outcome: ChaosOutcome
    let settings: String
    let verdict: ChaosVerdict
    let summaries: [RecoverySummary]

    init(label: String, guarantee: ChaosGuarantee, seed: UInt64, kinds: [FaultKind], plan: [PlannedFault], outcome: ChaosOutcome,
         settings: String) {
        self.label = label
        self.guarantee = guarantee
        self.seed = seed
        self.kinds = kinds
        self.plan = plan
        self.outcome = outcome
        self.settings = settings
        verdict = ChaosCheck.verdict(sends: outcome.sends, consumed: outcome.consumed, faults: outcome.faults)
        summaries = verdict.summaries(kinds: kinds)
    }

    /// The mode promised no acknowledged loss and the run lost some, or promised every log holds every
    /// acknowledged message and one does not.
    var brokePromise: Bool {
        (guarantee.promisesNoLoss && !verdict.lost.isEmpty) || (guarantee.everyLogHoldsAll && outcome.replicas.contains { !$0.missing.isEmpty })
    }

    /// `Every node's log: n0 ...; n1 ...` with what each lacks.
    var replicaLine: String {
        "Every node's own log (read from its files after the run): " + outcome.replicas.map { replica in
            "\(replica.name) \(replica.records) records, \(replica.missing.count) acknowledged missing, \(replica.repeated) repeated"
                + (replica.missing.isEmpty ? "" : " (e.g. " + replica.missing.prefix(3).joined(separator: ", ") + ")")
        }.joined(separator: "; ") + (guarantee.everyLogHoldsAll ? "" : " (this mode does not promise that every node's log holds all)")
    }

    /// `KEPT: ...` or `BROKEN: ...`, said plainly.
    var verdictLine: String {
        let short = outcome.replicas.filter { !$0.missing.isEmpty }
        if verdict.lost.isEmpty, guarantee.everyLogHoldsAll, let first = short.first {
            return "BROKEN: all \(verdict.acknowledged) acknowledged messages were read back, but \(first.name)'s own log lacks "
                + "\(first.missing.count) of them, e.g. " + first.missing.prefix(5).joined(separator: ", ")
        }
        if verdict.lost.isEmpty {
            return "KEPT: all \(verdict.acknowledged) acknowledged messages were read back"
                + (verdict.duplicated.isEmpty ? "" : " (\(verdict.duplicated.count) of them more than once)")
        }
        let word = guarantee.promisesNoLoss ? "BROKEN" : "LOST (allowed by this mode)"
        return "\(word): \(verdict.lost.count) of \(verdict.acknowledged) acknowledged messages were never read back, e.g. "
            + verdict.lost.prefix(5).joined(separator: ", ")
    }

    func millis(_ value: Double?) -> String { value.map { format($0, 0) } ?? "-" }

    var summaryRows: [[String]] {
        summaries.map { [$0.kind.rawValue, "\($0.faults)", "\($0.impacted)", millis($0.p50Millis), millis($0.maxMillis), "\($0.unrecovered)"] }
    }
    static let summaryHeader = ["fault", "injected", "with failed sends", "recovery p50 ms", "recovery max ms", "not recovered"]

    var countRows: [[String]] {
        [["sends", "\(verdict.sends)"], ["acknowledged (SEND_OK)", "\(verdict.acknowledged)"],
         ["failed (refused, not sent)", "\(verdict.counts[.failed] ?? 0)"],
         ["unknown (timeout, closed, stored without the guarantee)", "\(verdict.counts[.unknown] ?? 0)"],
         ["lost (acknowledged, never read back)", "\(verdict.lost.count)"],
         ["duplicated (read back more than once)", "\(verdict.duplicated.count)"],
         ["failed sends read back anyway", "\(verdict.failedFound)"], ["unknown sends read back", "\(verdict.unknownFound)"],
         ["read back, never sent by this run", "\(verdict.unexpected)"], ["sends skipped (in flight at the limit)", "\(outcome.skippedSends)"]]
            + (outcome.outOfOrder.map { [["out of order (orderly sends, per queue)", Self.perQueue($0)]] } ?? [])
    }

    /// `Not acknowledged, by why: timeout 120, code 2 (...) 14`: most frequent first.
    var reasonLine: String {
        "Not acknowledged, by why: " + (outcome.reasons.isEmpty ? "none"
            : outcome.reasons.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// `0 (q0 0, q1 0, ...)`: the total, then each queue's.
    static func perQueue(_ counts: [Int32: Int]) -> String {
        "\(counts.values.reduce(0, +)) (" + counts.keys.sorted().map { "q\($0) \(counts[$0]!)" }.joined(separator: ", ") + ")"
    }

    func printText() {
        print("")
        print("Chaos: \(label); faults \(kinds.map(\.rawValue).joined(separator: ",")); seed \(seed)" + (outcome.interrupted ? " (INTERRUPTED)" : ""))
        print("Conditions: \(settings)")
        for row in countRows { print("  " + row[0].padding(58) + row[1]) }
        print("  " + Self.summaryHeader.map { $0.padding(18) }.joined())
        for row in summaryRows { print("  " + row.map { $0.padding(18) }.joined()) }
        for line in outcome.skippedFaults { print("  not injected: \(line)") }
        print(reasonLine)
        print(replicaLine)
        print("Guarantee: \(guarantee.claim)")
        print(verdictLine)
    }

    var json: String {
        let recoveries = summaries.map {
            "\"\($0.kind.rawValue)\":{\"faults\":\($0.faults),\"impacted\":\($0.impacted),\"unrecovered\":\($0.unrecovered),"
                + "\"p50_ms\":\($0.p50Millis.map { format($0, 1) } ?? "null"),\"max_ms\":\($0.maxMillis.map { format($0, 1) } ?? "null")}"
        }.joined(separator: ",")
        let faults = verdict.recoveries.map { recovery in
            "{\"kind\":\"\(recovery.fault.kind.rawValue)\",\"node\":\"\(recovery.fault.node)\",\"at_s\":\(format(seconds(recovery.fault.injectedAt), 3)),"
                + "\"healed_s\":\(recovery.fault.healedAt.map { format(seconds($0), 3) } ?? "null"),"
                + "\"recovery_ms\":\(recovery.millis.map { format($0, 1) } ?? "null")"
                + (recovery.fault.detail.map { ",\"detail\":" + jsonString($0) } ?? "") + "}"
        }.joined(separator: ",")
        return """
            {"cluster":"\(Report.escape(label))","seed":\(seed),"interrupted":\(outcome.interrupted),"sends":\(verdict.sends),\
            "acknowledged":\(verdict.acknowledged),"failed":\(verdict.counts[.failed] ?? 0),"unknown":\(verdict.counts[.unknown] ?? 0),\
            "lost":\(verdict.lost.count),"duplicated":\(verdict.duplicated.count),"failed_found":\(verdict.failedFound),\
            "unknown_found":\(verdict.unknownFound),"unexpected":\(verdict.unexpected),"skipped_sends":\(outcome.skippedSends),\
            "out_of_order":\(outcome.outOfOrder.map { "\($0.values.reduce(0, +))" } ?? "null"),"promises_no_loss":\(guarantee.promisesNoLoss),"replicas":{\(replicaJSON)},"kept":\(!brokePromise),"lost_keys":[\(verdict.lost.prefix(100).map { "\"\($0)\"" }.joined(separator: ","))],\
            "recovery":{\(recoveries)},"faults":[\(faults)]}

            """
    }

    var replicaJSON: String {
        outcome.replicas.map { "\"\($0.name)\":{\"records\":\($0.records),\"missing\":\($0.missing.count),\"repeated\":\($0.repeated)}" }
            .joined(separator: ",")
    }

    /// Seconds since the load's measured start.
    func seconds(_ time: UInt64) -> Double { Double(Int64(bitPattern: time &- outcome.started)) / 1e9 }
}

extension String {
    /// Left-aligned in `width` columns (longer text is kept whole, with one space).
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
