// swift-tools-version:6.1
// Micro-benchmarks with malloc counts (ordo-one/benchmark). A package of its own, so `swift build` and
// `swift test` at the root never build the benchmark plugin. Run: `swift package --disable-sandbox benchmark`.
import PackageDescription

let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "SwiftRocketMQ", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CommitLogBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CommitLog", package: "SwiftRocketMQ"),
                .product(name: "IndexFile", package: "SwiftRocketMQ"),
                .product(name: "Remoting", package: "SwiftRocketMQ"),
                .product(name: "Common", package: "SwiftRocketMQ"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CommitLogBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
