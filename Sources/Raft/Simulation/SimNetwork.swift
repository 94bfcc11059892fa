// The simulated network: messages in flight, each with the tick it may arrive, and the links that are cut.

/// Messages between simulated nodes. Delivery order is chosen by the simulation's generator, so messages are
/// reordered freely; a cut link loses what crosses it at delivery time.
struct SimNetwork: Sendable {
    struct InFlight: Sendable {
        var message: RaftMessage
        var deliverAt: UInt64
    }

    /// More than this many messages in flight and new ones are lost (a full socket buffer).
    static let inFlightMax = 20_000

    let nodeCount: Int
    private(set) var inFlight: [InFlight] = []
    /// `cut[source * nodeCount + target]`: that direction of the link loses everything.
    private var cut: [Bool]

    init(nodeCount: Int) {
        self.nodeCount = nodeCount
        cut = Array(repeating: false, count: nodeCount * nodeCount)
    }

    func isCut(_ source: NodeID, _ target: NodeID) -> Bool {
        cut[Int(source.rawValue) * nodeCount + Int(target.rawValue)]
    }

    /// Queues a message; false if the network is full.
    mutating func send(_ message: RaftMessage, deliverAt: UInt64) -> Bool {
        guard inFlight.count < Self.inFlightMax else { return false }
        inFlight.append(InFlight(message: message, deliverAt: deliverAt))
        return true
    }

    /// Takes the message at `position` out (the last one moves into its place: order is random anyway).
    mutating func remove(at position: Int) -> InFlight {
        inFlight.swapAt(position, inFlight.count - 1)
        return inFlight.removeLast()
    }

    mutating func heal() {
        for index in cut.indices { cut[index] = false }
    }

    /// Cuts more links: one node isolated, the group split in two, one node unable to send, or one direction of
    /// one link. Returns what it did, for the trace.
    mutating func partition(_ rng: inout SplitMix64) -> String {
        let node = rng.index(below: nodeCount)
        switch rng.next(below: 4) {
        case 0:
            for other in 0..<nodeCount where other != node { cutBoth(node, other) }
            return "isolate n\(node)"
        case 1:
            let inFirstHalf = (0..<nodeCount).map { _ in rng.next(below: 2) == 0 }
            for source in 0..<nodeCount {
                for target in 0..<nodeCount where inFirstHalf[source] != inFirstHalf[target] {
                    cut[source * nodeCount + target] = true
                }
            }
            return "split \(inFirstHalf.map { $0 ? "A" : "B" }.joined())"
        case 2:
            for other in 0..<nodeCount where other != node { cut[node * nodeCount + other] = true }
            return "n\(node) cannot send"
        default:
            let other = (node + 1 + rng.index(below: nodeCount - 1)) % nodeCount
            cut[node * nodeCount + other] = true
            return "cut n\(node)->n\(other)"
        }
    }

    private mutating func cutBoth(_ first: Int, _ second: Int) {
        cut[first * nodeCount + second] = true
        cut[second * nodeCount + first] = true
    }
}
