// What a leader knows about each follower: how far it matches, what to send next, what is in flight.

/// A leader's view of one follower.
///
/// - **probe**: the leader does not know where the follower's log matches; it sends one append at a time
///   (at most one per heartbeat interval) and moves `next` back on each rejection.
/// - **replicate**: the follower matched; the leader streams appends optimistically, up to
///   `inflightAppendsMax` un-acknowledged messages, and falls back to probe on a rejection.
struct Progress: Sendable {
    enum State: Sendable, Equatable { case probe, replicate }

    let id: NodeID
    /// Highest index known to match the leader's log on the follower (durably).
    var match: LogIndex = .zero
    /// Next index to send.
    var next: LogIndex
    var state: State = .probe
    /// In probe state: an append is out and unanswered, so hold further probes until a heartbeat round.
    var probeSent = false
    /// Last index of each un-acknowledged append and the tick it left, oldest first (replicate state).
    private(set) var inflight: [(lastIndex: LogIndex, sentAt: UInt64)] = []
    /// The leader's tick when this follower last answered (check-quorum counts followers heard from within
    /// an election timeout).
    var lastHeardAt: UInt64
    /// The follower was reported as needing entries below the leader's start (reset when it matches again).
    var rebuildReported = false

    init(id: NodeID, next: LogIndex, now: UInt64) {
        self.id = id
        self.next = next
        lastHeardAt = now
    }

    /// No more appends may be sent now.
    func isPaused(inflightAppendsMax: Int) -> Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflight.count >= inflightAppendsMax
        }
    }

    /// Records an append ending at `lastIndex`, sent at tick `now`.
    mutating func sent(through lastIndex: LogIndex, entryCount: Int, now: UInt64) {
        switch state {
        case .probe:
            probeSent = true
        case .replicate:
            if entryCount > 0 {
                next = lastIndex.next
                inflight.append((lastIndex, now))
            }
        }
    }

    /// The tick the oldest un-acknowledged append left, if any.
    var oldestInflightSentAt: UInt64? { inflight.first?.sentAt }

    /// The follower holds everything through `index`. Returns false for a stale acknowledgement.
    mutating func acknowledged(through index: LogIndex) -> Bool {
        guard index > match else {
            // A duplicate or late answer; still, a probe that was answered may be followed by the next one.
            if state == .probe, index.next == next { probeSent = false }
            return false
        }
        match = index
        rebuildReported = false
        if next <= index { next = index.next }
        if let firstLater = inflight.firstIndex(where: { $0.lastIndex > index }) {
            inflight.removeFirst(firstLater)
        } else {
            inflight.removeAll(keepingCapacity: true)
        }
        probeSent = false
        if state == .probe {
            state = .replicate
            next = match.next
        }
        return true
    }

    /// The follower rejected an append after `rejectedIndex`; `retryFrom` is the leader's best guess of the
    /// last matching index. Returns false for a stale rejection (one about an index already behind us).
    mutating func rejected(_ rejectedIndex: LogIndex, retryFrom guess: LogIndex) -> Bool {
        switch state {
        case .replicate:
            // Everything through `match` is known to match, so probing resumes right after it; a rejection at
            // or below `match` is old news.
            guard rejectedIndex > match else { return false }
            becomeProbe()
        case .probe:
            // Only the answer to the probe we sent last counts; `next` then moves back at least one entry.
            guard rejectedIndex == next.previous else { return false }
            next = max(match.next, min(guess.next, rejectedIndex))
            probeSent = false
        }
        return true
    }

    /// Back to probing from just after `match` (after a rejection, or when the follower went quiet).
    mutating func becomeProbe() {
        state = .probe
        next = match.next
        probeSent = false
        inflight.removeAll(keepingCapacity: true)
    }
}
