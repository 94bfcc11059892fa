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
        .library(name: "Remoting", targets: ["Remoting"]),
        .library(name: "Common", targets: ["Common"]),
        .library(name: "NameServer", targets: ["NameServer"]),
        .library(name: "Broker", targets: ["Broker"]),
        .library(name: "Client", targets: ["Client"]),
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
        // Raft (DLedger's election and replication) as a pure state machine plus its seeded simulator.
        .target(name: "Raft"),
        // The put pipeline (the one door into the store) and replication: HA master/slave on dedicated threads
        // over blocking sockets; NIOCore only for the promises the pipeline completes; DLedger on Raft.
        .target(
            name: "Replication",
            dependencies: ["IndexFile", "CommitLog", "Raft", .product(name: "NIOCore", package: "swift-nio")]),
        // The roles, one target each under Sources/Node (the compiler enforces the arrows):
        // Remoting (frames, codes, JSON; SwiftNIO only) <- Common (RocketMQ's message model, routes, bodies)
        // <- NameServer, Broker, Client. Only the Broker links the store.
        .target(
            name: "Remoting",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Sources/Node/Remoting"),
        .target(
            name: "Common",
            dependencies: ["Remoting", "CLibdeflate", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Node/Common"),
        .target(
            name: "NameServer",
            dependencies: ["Common", "Remoting", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Node/NameServer"),
        .target(
            name: "Broker",
            dependencies: [
                "Common", "Remoting", "Replication", "IndexFile", "CommitLog", "Raft",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Node/Broker"),
        .target(
            name: "Client",
            dependencies: [
                "Common", "Remoting", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Node/Client"),

        .executableTarget(
            name: "bench",
            dependencies: [
                "CommitLog", "IndexFile", "Client", "Common", "Remoting",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .executableTarget(
            name: "mqnamesrv",
            dependencies: [
                "NameServer", "Common", "Remoting", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "mqbroker",
            dependencies: [
                "Broker", "Common", "Remoting", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "mqadmin",
            dependencies: ["Client", "Common", "Remoting", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Helpers shared by the test targets: temporary directories, seeded randomness, child processes.
        .target(name: "TestSupport", dependencies: ["CommitLog"], path: "Tests/TestSupport"),
        .testTarget(name: "CommitLogTests", dependencies: ["CommitLog", "TestSupport"]),
        .testTarget(name: "IndexFileTests", dependencies: ["IndexFile", "CommitLog", "TestSupport"]),
        .testTarget(
            name: "ReplicationTests",
            dependencies: [
                "Replication", "IndexFile", "CommitLog", "Raft", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "RaftTests", dependencies: ["Raft"]),
        // bench's own logic (the chaos checker) through `@testable import bench`.
        .testTarget(name: "BenchTests", dependencies: ["bench"]),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Remoting", "Common", "NameServer", "Broker", "Client", "Replication", "TestSupport", "CommitLog", "IndexFile",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
    ]
)
