// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SwiftRocketMQ",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CommitLog", targets: ["CommitLog"]),
        .library(name: "IndexFile", targets: ["IndexFile"]),
        .library(name: "Replication", targets: ["Replication"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Node", targets: ["Node"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "mqnamesrv", targets: ["mqnamesrv"]),
        .executable(name: "mqbroker", targets: ["mqbroker"]),
        .executable(name: "mqadmin", targets: ["mqadmin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries: liburing (io_uring) and libdeflate (PCLMUL CRC32, RocketMQ's body checksum).
        .systemLibrary(
            name: "CLiburing", pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]),
        .systemLibrary(
            name: "CLibdeflate", pkgConfig: "libdeflate",
            providers: [.apt(["libdeflate-dev"])]),

        // The storage engine: bytes, files and the OS; nothing of ours above it.
        .target(name: "CommitLog", dependencies: ["CLiburing", "CLibdeflate"]),
        // Consume queues, the key index, dispatch and the MessageStore facade.
        .target(name: "IndexFile", dependencies: ["CommitLog"]),
        // The put pipeline and replication (later issues).
        .target(name: "Replication", dependencies: ["IndexFile", "Raft"]),
        // Raft (DLedger's election and replication) as a pure state machine plus its seeded simulator.
        .target(name: "Raft"),
        // Remoting, NameServer, Broker and the Swift client (Producer, consumers, Admin).
        .target(
            name: "Node",
            dependencies: [
                "Replication", "IndexFile", "CLibdeflate",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),

        .executableTarget(
            name: "bench",
            dependencies: [
                "CommitLog", "IndexFile", "Node",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .executableTarget(
            name: "mqnamesrv",
            dependencies: [
                "Node", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "mqbroker",
            dependencies: [
                "Node", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "mqadmin",
            dependencies: ["Node", "CommitLog", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Helpers shared by the test targets: temporary directories, seeded randomness, child processes.
        .target(name: "TestSupport", dependencies: ["CommitLog"], path: "Tests/TestSupport"),
        .testTarget(name: "CommitLogTests", dependencies: ["CommitLog", "TestSupport"]),
        .testTarget(name: "IndexFileTests", dependencies: ["IndexFile", "CommitLog", "TestSupport"]),
        .testTarget(name: "RaftTests", dependencies: ["Raft"]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Node", "TestSupport", "CommitLog", "IndexFile",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
    ]
)
