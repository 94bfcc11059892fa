// swift-tools-version:6.1
import PackageDescription

/// Our targets' release builds skip the run-time exclusivity checks (`swift_beginAccess`: a thread-local access
/// set touched on every class-property access on the hot path); debug builds and tests keep them.
let ourSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

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
        .library(name: "Cluster", targets: ["Cluster"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "mqnamesrv", targets: ["mqnamesrv"]),
        .executable(name: "mqbroker", targets: ["mqbroker"]),
        .executable(name: "mqadmin", targets: ["mqadmin"]),
        .executable(name: "mqcluster", targets: ["mqcluster"]),
        .executable(name: "mqdashboard", targets: ["mqdashboard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
    ],
    targets: [
        // System libraries: liburing (io_uring) and libdeflate (PCLMUL CRC32, RocketMQ's body checksum).
        .systemLibrary(
            name: "CLiburing", pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]),
        .systemLibrary(
            name: "CLibdeflate", pkgConfig: "libdeflate",
            providers: [.apt(["libdeflate-dev"])]),

        // Our own C: RocketMQ's body CRC with AVX-512 VPCLMULQDQ folding (libdeflate for short input and other CPUs).
        .target(name: "CStoreKernels", dependencies: ["CLibdeflate"],
                linkerSettings: [.linkedLibrary("deflate")]),
        // A thread's scheduler slice (sched_setattr, which Swift cannot call): the event loops of the broker and the client.
        .target(name: "CThreadSlice"),
        // The storage engine: bytes, files and the OS; nothing of ours above it.
        .target(name: "CommitLog", dependencies: ["CLiburing", "CLibdeflate", "CStoreKernels"], swiftSettings: ourSettings),
        // Consume queues, the key index, dispatch and the MessageStore facade.
        .target(name: "IndexFile", dependencies: ["CommitLog"], swiftSettings: ourSettings),
        // Raft (DLedger's election and replication) as a pure state machine plus its seeded simulator.
        .target(name: "Raft", swiftSettings: ourSettings),
        // The put pipeline (the one door into the store) and replication: HA master/slave on dedicated threads
        // over blocking sockets; NIOCore only for the promises the pipeline completes; DLedger on Raft.
        .target(
            name: "Replication",
            dependencies: ["IndexFile", "CommitLog", "Raft", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: ourSettings),
        // The roles, one target each under Sources/Node (the compiler enforces the arrows):
        // Remoting (frames, codes, JSON, the event loops' scheduler slice; SwiftNIO and CThreadSlice)
        // <- Common (RocketMQ's message model, routes, bodies) <- NameServer, Broker, Client. Only the Broker links the store.
        .target(
            name: "Remoting",
            dependencies: ["CThreadSlice", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Sources/Node/Remoting", swiftSettings: ourSettings),
        .target(
            name: "Common",
            dependencies: ["Remoting", "CLibdeflate", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/Node/Common", swiftSettings: ourSettings),
        // Logs (swift-log to RocketMQ-named files), metrics (swift-metrics + a Prometheus text endpoint) and the
        // roles' lifecycle (swift-service-lifecycle); nothing of the store, so the NameServer links it too.
        .target(
            name: "Observability",
            dependencies: [
                "Common", .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Node/Observability", swiftSettings: ourSettings),
        .target(
            name: "NameServer",
            dependencies: [
                "Common", "Remoting", "Observability", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Node/NameServer", swiftSettings: ourSettings),
        .target(
            name: "Broker",
            dependencies: [
                "Common", "Remoting", "Replication", "IndexFile", "CommitLog", "Raft", "Observability",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Node/Broker", swiftSettings: ourSettings),
        .target(
            name: "Client",
            dependencies: [
                "Common", "Remoting", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),  // a library logs through swift-log; the application picks the handler
            ],
            path: "Sources/Node/Client", swiftSettings: ourSettings),
        // mqcluster's work: conf sets, detached roles with pid files and logs, status from the admin requests. A launcher
        // on top of the client: it starts mqnamesrv/mqbroker as processes and links neither role.
        .target(name: "Cluster", dependencies: ["Client", "Common", "Remoting"], path: "Sources/Node/Cluster", swiftSettings: ourSettings),

        .executableTarget(
            name: "bench",
            dependencies: [
                "CommitLog", "IndexFile", "Client", "Common", "Remoting",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ], swiftSettings: ourSettings),
        .executableTarget(
            name: "mqnamesrv",
            dependencies: [
                "NameServer", "Common", "Remoting", "Observability", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], swiftSettings: ourSettings),
        .executableTarget(
            name: "mqbroker",
            dependencies: [
                "Broker", "Common", "Remoting", "Observability", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], swiftSettings: ourSettings),
        .executableTarget(
            name: "mqadmin",
            dependencies: ["Client", "Common", "Remoting", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: ourSettings),
        .executableTarget(
            name: "mqcluster",
            dependencies: ["Cluster", "Common", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: ourSettings),
        // The web console (rocketmq-dashboard's pages) over the Swift client's admin calls; never the store.
        .target(
            name: "Dashboard",
            dependencies: [
                "Client", "Common", "Remoting", "Observability", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
            ], swiftSettings: ourSettings),
        .executableTarget(
            name: "mqdashboard",
            dependencies: [
                "Dashboard", "Common", "Observability", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: ourSettings),

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
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
    ]
)
