// The only source of randomness in the Raft target: seeded by the caller, so every run replays.

/// A small deterministic pseudo-random generator (the SplitMix64 construction: a Weyl sequence passed
/// through a 64-bit mixing function). Not for secrets; for election jitter and simulations.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A number in `0 ..< bound` (bound > 0). Uses the high half of a 128-bit product, which is stable across
    /// toolchains (unlike the standard library's `random(in:using:)`, whose algorithm may change), and rejects
    /// the few values that would bias it.
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "next(below:) needs a positive bound")
        let threshold = (0 &- bound) % bound
        while true {
            let (high, low) = bound.multipliedFullWidth(by: next())
            if low >= threshold { return high }
        }
    }

    /// An index in `0 ..< count` (count > 0).
    public mutating func index(below count: Int) -> Int { Int(next(below: UInt64(count))) }

    /// True with probability `perMille` / 1000.
    public mutating func chance(perMille: Int) -> Bool { perMille > 0 && next(below: 1000) < UInt64(perMille) }
}
