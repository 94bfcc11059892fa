/// What the chaos checker computes from a run, kept free of processes and clocks so that tests can give it
/// hand-made histories: the sends and their answers, what was consumed afterwards, and the faults injected.

/// How one send was answered. `ok` is SEND_OK: acknowledged, so it must be consumed. `failed`: the broker said no
/// (an error code) or nothing was sent (connection refused, no route); the message may still appear (a deposed
/// DLedger leader's entry can be committed by its successor), which is allowed. `unknown`: no answer (timeout,
/// connection closed) or an answer that stored the message without the asked-for guarantee (FLUSH_SLAVE_TIMEOUT,
/// SLAVE_NOT_AVAILABLE, FLUSH_DISK_TIMEOUT): found or not, both are allowed.
enum ChaosAnswer: String, Sendable, CaseIterable {
    case ok, failed, unknown
}

/// One send: its unique key (also its body's prefix), when it left and when its answer (or error) came.
struct ChaosSend: Sendable, Equatable {
    var key: String
    var sentAt: UInt64
    var answeredAt: UInt64
    var answer: ChaosAnswer
}

/// A fault the run injected: what, on which node, when, and when it was healed (nil: still on at the end).
struct ChaosFault: Sendable, Equatable {
    var kind: FaultKind
    var node: String
    var injectedAt: UInt64
    var healedAt: UInt64?
}

/// The outage one fault caused: from the first failed send after the fault (its send time) to the answer of the
/// first acknowledged send made after that failure. Nil `firstFailureAt`: no send failed, the fault cost nothing
/// a client saw. Nil `recoveredAt` with a failure: no send made after it was acknowledged before the run ended.
struct FaultRecovery: Sendable, Equatable {
    var fault: ChaosFault
    var firstFailureAt: UInt64?
    var recoveredAt: UInt64?

    var millis: Double? {
        guard let firstFailureAt, let recoveredAt else { return nil }
        return Double(recoveredAt - firstFailureAt) / 1e6
    }
}

/// Recovery times of one fault kind: how many faults, how many caused failed sends, p50 and max of those that
/// recovered, and how many never did.
struct RecoverySummary: Sendable, Equatable {
    var kind: FaultKind
    var faults: Int
    var impacted: Int
    var unrecovered: Int
    var p50Millis: Double?
    var maxMillis: Double?
}

/// The verdict on a history: every acknowledged key must be consumed; none consumed twice.
struct ChaosVerdict: Sendable {
    var sends: Int
    var counts: [ChaosAnswer: Int]
    /// Acknowledged keys never consumed, in send order.
    var lost: [String]
    /// Keys consumed more than once (each once here), sorted.
    var duplicated: [String]
    /// Failed or unknown sends whose message was consumed anyway.
    var failedFound: Int
    var unknownFound: Int
    /// Consumed keys no send of this run made (another run's topic, or a corrupt body).
    var unexpected: Int
    var recoveries: [FaultRecovery]
    var acknowledged: Int { counts[.ok] ?? 0 }

    func summaries(kinds: [FaultKind]) -> [RecoverySummary] {
        kinds.map { kind in
            let mine = recoveries.filter { $0.fault.kind == kind }
            let impacted = mine.filter { $0.firstFailureAt != nil }
            let times = impacted.compactMap(\.millis).sorted()
            return RecoverySummary(kind: kind, faults: mine.count, impacted: impacted.count,
                                   unrecovered: impacted.count - times.count,
                                   p50Millis: times.isEmpty ? nil : times[(times.count - 1) / 2], maxMillis: times.last)
        }
    }
}

enum ChaosCheck {
    /// Compares `sends` with `consumed` (every key read back, repeats included) and times each fault's outage.
    static func verdict(sends: [ChaosSend], consumed: [String], faults: [ChaosFault]) -> ChaosVerdict {
        var seen: [String: Int] = [:]
        for key in consumed { seen[key, default: 0] += 1 }
        var counts: [ChaosAnswer: Int] = [:]
        var lost: [String] = []
        var failedFound = 0, unknownFound = 0
        var sentKeys = Set<String>()
        for send in sends {
            counts[send.answer, default: 0] += 1
            sentKeys.insert(send.key)
            let found = seen[send.key] != nil
            switch send.answer {
            case .ok: if !found { lost.append(send.key) }
            case .failed: if found { failedFound += 1 }
            case .unknown: if found { unknownFound += 1 }
            }
        }
        let duplicated = seen.filter { $0.value > 1 }.map(\.key).sorted()
        let unexpected = seen.keys.filter { !sentKeys.contains($0) }.count
        return ChaosVerdict(sends: sends.count, counts: counts, lost: lost, duplicated: duplicated, failedFound: failedFound,
                            unknownFound: unknownFound, unexpected: unexpected, recoveries: recoveries(sends: sends, faults: faults))
    }

    /// Each fault's outage, looked for between its injection and the next fault's (the last: the end of the
    /// history). A send counts as failed for a fault when its answer came in that window; it counts from when it
    /// was sent, or from the injection if it was sent before (a send stuck on a stopped node fails only later).
    static func recoveries(sends: [ChaosSend], faults: [ChaosFault]) -> [FaultRecovery] {
        let ordered = faults.sorted { $0.injectedAt < $1.injectedAt }
        let byAnswer = sends.sorted { $0.answeredAt < $1.answeredAt }
        return ordered.enumerated().map { index, fault in
            let windowEnd = index + 1 < ordered.count ? ordered[index + 1].injectedAt : UInt64.max
            let failures = byAnswer.lazy.filter { $0.answer != .ok && $0.answeredAt >= fault.injectedAt && $0.answeredAt < windowEnd }
            guard let firstFailureAt = failures.map({ max($0.sentAt, fault.injectedAt) }).min() else {
                return FaultRecovery(fault: fault, firstFailureAt: nil, recoveredAt: nil)
            }
            let recoveredAt = byAnswer.first { $0.answer == .ok && $0.sentAt > firstFailureAt }?.answeredAt
            return FaultRecovery(fault: fault, firstFailureAt: firstFailureAt, recoveredAt: recoveredAt)
        }
    }
}
