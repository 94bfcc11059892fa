// swift-tools-version:6.1
// Coverage-guided fuzzing (libFuzzer through `-sanitize=fuzzer`) of the store's decoders and recovery, and of
// everything that reads bytes from the network: remoting frames and both header encodings, every body type, the
// properties codec, batch bodies, stored messages as clients decode them, and the HA stream.
// A package of its own, so `swift build`/`swift test` at the root never build it. Build and run every
// target: `scripts/fuzz.sh [seconds-per-target]` (it passes `-sanitize=fuzzer,address`, which SwiftPM
// applies to the root package's targets too, so the store's code is instrumented).
//
// One executable per entry point; each links `FuzzSupport`, whose `fuzzMain` hands libFuzzer the entry
// point and writes the target's seed corpus when asked (`FUZZ_WRITE_SEEDS=<dir>`).
import PackageDescription

let fuzzTargets = ["FuzzRecordDecoder", "FuzzUnitCheck", "FuzzCommitLogRecovery", "FuzzStoreRecovery", "FuzzIndexFile",
                   "FuzzRemotingFrame", "FuzzBodies", "FuzzMessageCodecs", "FuzzHAStream", "FuzzAclFile"]

let package = Package(
    name: "Fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "SwiftRocketMQ", path: ".."),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "CommitLog", package: "SwiftRocketMQ"),
                .product(name: "IndexFile", package: "SwiftRocketMQ"),
            ]),
    ] + fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "CommitLog", package: "SwiftRocketMQ"),
                .product(name: "IndexFile", package: "SwiftRocketMQ"),
                .product(name: "Remoting", package: "SwiftRocketMQ"),
                .product(name: "Common", package: "SwiftRocketMQ"),
                .product(name: "Replication", package: "SwiftRocketMQ"),
            ])
    }
)
