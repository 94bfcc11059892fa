// How hostile a simulated run is: rates of crashes, partitions and message faults.

/// The faults a `Simulation` injects. Rates are per mille: per step for node and partition events, per
/// message for network faults.
public struct FaultProfile: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// A random node loses power (unsynced writes lost or torn).
    public var crashPerMille: Int
    /// A crashed node restarts from its durable state.
    public var restartPerMille: Int
    /// A new partition: one node isolated, the group split in two, or one direction of some links cut.
    public var partitionPerMille: Int
    /// Every link works again.
    public var healPerMille: Int
    /// The leader is asked to hand leadership to a random member.
    public var transferPerMille: Int
    /// A client proposes an entry (to the leader it believes in, or a random node).
    public var proposePerMille: Int
    /// A message is lost, or delivered twice.
    public var dropPerMille: Int
    public var duplicatePerMille: Int
    /// A message waits up to this many ticks (and is reordered with others meanwhile).
    public var delayTicksMax: Int
    /// On a crash, the first lost append of several entries still arrives in part.
    public var tearPerMille: Int
    /// Node 0 is every node's preferred leader.
    public var preferFirstNode: Bool
    /// A random node compacts its log (in memory, and sometimes on disk) through its safe point.
    public var compactPerMille: Int

    public init(
        name: String, crashPerMille: Int = 0, restartPerMille: Int = 0, partitionPerMille: Int = 0,
        healPerMille: Int = 0, transferPerMille: Int = 0, proposePerMille: Int = 80, dropPerMille: Int = 0,
        duplicatePerMille: Int = 0, delayTicksMax: Int = 1, tearPerMille: Int = 0, preferFirstNode: Bool = false,
        compactPerMille: Int = 15
    ) {
        self.name = name
        self.crashPerMille = crashPerMille
        self.restartPerMille = restartPerMille
        self.partitionPerMille = partitionPerMille
        self.healPerMille = healPerMille
        self.transferPerMille = transferPerMille
        self.proposePerMille = proposePerMille
        self.dropPerMille = dropPerMille
        self.duplicatePerMille = duplicatePerMille
        self.delayTicksMax = delayTicksMax
        self.tearPerMille = tearPerMille
        self.preferFirstNode = preferFirstNode
        self.compactPerMille = compactPerMille
    }

    public var description: String { name }

    /// No faults but delays and reordering.
    public static let calm = FaultProfile(name: "calm")
    /// A little of everything.
    public static let standard = FaultProfile(
        name: "standard", crashPerMille: 2, restartPerMille: 10, partitionPerMille: 2, healPerMille: 8,
        transferPerMille: 1, dropPerMille: 30, duplicatePerMille: 20, delayTicksMax: 2, tearPerMille: 500)
    /// A bad network: many lost, duplicated and late messages.
    public static let lossy = FaultProfile(
        name: "lossy", dropPerMille: 200, duplicatePerMille: 100, delayTicksMax: 6)
    /// Frequent partitions, symmetric and one-way.
    public static let partitions = FaultProfile(
        name: "partitions", partitionPerMille: 10, healPerMille: 10, dropPerMille: 10, delayTicksMax: 2)
    /// Frequent power losses with torn writes.
    public static let crashes = FaultProfile(
        name: "crashes", crashPerMille: 8, restartPerMille: 20, dropPerMille: 10, delayTicksMax: 2,
        tearPerMille: 700)
    /// Everything at once, with leadership transfers and a preferred leader.
    public static let chaos = FaultProfile(
        name: "chaos", crashPerMille: 5, restartPerMille: 15, partitionPerMille: 6, healPerMille: 8,
        transferPerMille: 4, dropPerMille: 80, duplicatePerMille: 50, delayTicksMax: 4, tearPerMille: 500,
        preferFirstNode: true)

    public static let all: [FaultProfile] = [.calm, .standard, .lossy, .partitions, .crashes, .chaos]
}
