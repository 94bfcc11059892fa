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

/// A fault the run injected: what, on which node, when, and when it was healed (nil: still on at the end); for a
/// power cut, what the file system held unsynced at the cut (`unsynced 12288 bytes, torn /commitlog/...`).
struct ChaosFault: Sendable, Equatable {
    var kind: FaultKind
    var node: String
    var injectedAt: UInt64
    var healedAt: UInt64?
    var detail: String? = nil
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

/// One replica's commit log against the acknowledged keys: how many records, which acknowledged keys it lacks,
/// how many it holds more than once.
struct ReplicaCheck: Sendable, Equatable {
    var name: String
    var records: Int
    var missing: [String]
    var repeated: Int
}

enum ChaosCheck {
    /// Orderly sends read back out of order, per queue: a message read after one its sender made later (keys
    /// `<run>-q<queue>-<n>`: the sequence `n` must only grow along a queue). Keys without that shape are skipped.
    static func outOfOrder(_ consumed: [ConsumedMessage]) -> [Int32: Int] {
        var highest: [Int32: Int] = [:]
        var counts: [Int32: Int] = [:]
        for message in consumed {
            guard let dash = message.key.lastIndex(of: "-"), let sequence = Int(message.key[message.key.index(after: dash)...]),
                  message.key[..<dash].hasSuffix("-q\(message.queue)") else { continue }
            counts[message.queue, default: 0] += 0
            if let previous = highest[message.queue], sequence < previous {
                counts[message.queue, default: 0] += 1
            } else {
                highest[message.queue] = sequence
            }
        }
        return counts
    }

    /// Checks one node's log (`bodies`, in log order) for every acknowledged key exactly once.
    static func replica(_ name: String, bodies: [String], acknowledged: [String]) -> ReplicaCheck {
        var counts: [String: Int] = [:]
        for body in bodies { counts[body, default: 0] += 1 }
        return ReplicaCheck(name: name, records: bodies.count, missing: acknowledged.filter { counts[$0] == nil },
                            repeated: acknowledged.filter { (counts[$0] ?? 0) > 1 }.count)
    }

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

    /// Each fault's outage, looked for among the sends answered after its injection and made before the next
    /// fault's (the last: the end of the history), in the order they were made. A run of consecutive failed
    /// (or unknown) sends starts at the first one's send time (or the injection, for a send stuck since before it);
    /// it ends with the earliest answer to an acknowledged send made after the run's last failure (from anywhere
    /// later in the history). The outage is the longest run, so one stray failure next to the fault does not stand
    /// for it; a run that never ends makes the fault unrecovered.
    static func recoveries(sends: [ChaosSend], faults: [ChaosFault]) -> [FaultRecovery] {
        let ordered = faults.sorted { $0.injectedAt < $1.injectedAt }
        let bySent = sends.sorted { $0.sentAt < $1.sentAt }
        // okAnswerFrom[i]: the earliest answer to an acknowledged send among bySent[i...].
        var okAnswerFrom = [UInt64?](repeating: nil, count: bySent.count + 1)
        for index in bySent.indices.reversed() {
            let own = bySent[index].answer == .ok ? bySent[index].answeredAt : nil
            okAnswerFrom[index] = [own, okAnswerFrom[index + 1]].compactMap { $0 }.min()
        }
        return ordered.enumerated().map { position, fault in
            let windowEnd = position + 1 < ordered.count ? ordered[position + 1].injectedAt : UInt64.max
            var longest: FaultRecovery?
            var runStart: UInt64?
            var lastFailure = 0
            func closeRun() {
                guard let start = runStart else { return }
                let run = FaultRecovery(fault: fault, firstFailureAt: start, recoveredAt: okAnswerFrom[lastFailure + 1])
                if longest == nil || Self.longer(run, than: longest!) { longest = run }
                runStart = nil
            }
            for index in bySent.indices where bySent[index].sentAt < windowEnd && bySent[index].answeredAt >= fault.injectedAt {
                if bySent[index].answer == .ok {
                    closeRun()
                } else {
                    if runStart == nil { runStart = max(bySent[index].sentAt, fault.injectedAt) }
                    lastFailure = index
                }
            }
            closeRun()
            return longest ?? FaultRecovery(fault: fault, firstFailureAt: nil, recoveredAt: nil)
        }
    }

    /// An unrecovered run is longer than any recovered one.
    private static func longer(_ run: FaultRecovery, than other: FaultRecovery) -> Bool {
        guard let runMillis = run.millis else { return other.millis != nil }
        guard let otherMillis = other.millis else { return false }
        return runMillis > otherMillis
    }
}
