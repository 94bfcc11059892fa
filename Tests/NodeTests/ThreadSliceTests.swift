#if canImport(Glibc)
import Glibc
#endif
import Broker
import Client
import NIOCore
import Remoting
import Testing
import TestSupport

/// `eventLoopSliceMicros` (broker.conf) and `ClientConfig.eventLoopSliceMicros`: the event loops run with the slice
/// asked for, as the kernel reports it (`/proc/PID/task/TID/sched`, `sched_getattr`); the other threads keep theirs.
@Suite(.serialized) struct ThreadSliceTests {
    /// Whether this kernel keeps a slice per thread (Linux 6.12+): it then reports one for every SCHED_OTHER thread.
    static let kernelHasSlices = ThreadSlice.micros() != nil

    /// `se.slice` of each thread of `pid`, by thread name (nil when the kernel shows none).
    static func slices(pid: pid_t) -> [(name: String, nanos: Int?)] {
        let tasks = "/proc/\(pid)/task"
        guard let directory = opendir(tasks) else { return [] }
        defer { closedir(directory) }
        var found: [(name: String, nanos: Int?)] = []
        while let entry = readdir(directory) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(tid) != nil, let comm = readText("\(tasks)/\(tid)/comm"), let sched = readText("\(tasks)/\(tid)/sched") else { continue }
            let line = sched.split(separator: "\n").first { $0.hasPrefix("se.slice ") }
            found.append((String(comm.prefix { $0 != "\n" }), line.flatMap { Int($0.split(separator: ":").last!.trimmingPrefix(while: { $0 == " " })) }))
        }
        return found
    }

    @Test func brokerEventLoopsRunWithTheConfiguredSlice() async throws {
        let broker = try RunningBroker(extraConfig: "eventLoopSliceMicros=250")
        let pid = try #require(broker.process?.pid)
        let threads = Self.slices(pid: pid)
        let loops = threads.filter { $0.name.hasPrefix("NIO-ELT") }
        #expect(!loops.isEmpty, "\(threads)")
        if Self.kernelHasSlices {
            for loop in loops { #expect(loop.nanos == 250_000, "\(loop)") }
            let others = threads.filter { !$0.name.hasPrefix("NIO-ELT") }
            #expect(!others.isEmpty && others.allSatisfy { $0.nanos != 250_000 }, "only the event loops: \(others)")
        } else {
            let log = readText(broker.directory.path + "/store/logs/broker.log") ?? ""
            #expect(log.contains("eventLoopSliceMicros=250 not applied"), "\(log)")
        }
        #expect(broker.process?.terminate(seconds: 20) == 0)
    }

    /// Without the key the loops get the default; 0 leaves the kernel's slice.
    @Test func brokerDefaultAndZero() async throws {
        #expect(BrokerConfig(storePathRootDir: "/tmp/unused").eventLoopSliceMicros == 250)
        let ours = ThreadSlice.micros().map { $0 * 1_000 }  // the kernel's default, as this test thread has it
        for (extra, expected) in [("", Self.kernelHasSlices ? 250_000 : nil), ("eventLoopSliceMicros=0", ours)] {
            let broker = try RunningBroker(extraConfig: extra)
            let pid = try #require(broker.process?.pid)
            let loops = Self.slices(pid: pid).filter { $0.name.hasPrefix("NIO-ELT") }
            #expect(!loops.isEmpty && loops.allSatisfy { $0.nanos == expected }, "\(extra): \(loops) vs \(String(describing: expected))")
            #expect(broker.process?.terminate(seconds: 20) == 0)
        }
    }

    /// A value the kernel would clamp, or no number, stops start-up naming file, line and key (exit 2).
    @Test func badSliceValuesStopStartUp() throws {
        let binary = try #require(builtExecutable("mqbroker"))
        let directory = TemporaryDirectory("slice-conf")
        for bad in ["50", "100001", "-1", "fast"] {
            writeText(directory.path + "/bad.conf", "brokerName=broker-x\neventLoopSliceMicros=\(bad)\n")
            let run = try ChildProcess.run([binary, "-c", directory.path + "/bad.conf"], seconds: 20)
            #expect(run.status == 2)
            #expect(run.output.contains("bad.conf:2: eventLoopSliceMicros must be 0 (the kernel's default) or microseconds in 100...100000, not \"\(bad)\""),
                    "\(run.output)")
        }
        writeText(directory.path + "/good.conf", "brokerName=broker-x\neventLoopSliceMicros=300\n")
        let printed = try ChildProcess.run([binary, "-c", directory.path + "/good.conf", "-p"], seconds: 20)
        #expect(printed.status == 0 && printed.output.contains("eventLoopSliceMicros=300"), "\(printed.output)")
    }

    /// The client asks for the slice on each of its loops before they run anything else.
    @Test func clientEventLoopRunsWithTheConfiguredSlice() async throws {
        var config = ClientConfig(namesrvAddr: "127.0.0.1:1")
        config.eventLoopSliceMicros = 300
        let producer = Producer(config: config)
        let loop = producer.client.makeTaskExecutor().eventLoop
        let slice = try await loop.submit { ThreadSlice.micros() }.get()
        #expect(slice == (Self.kernelHasSlices ? 300 : nil))
        await producer.shutdown()

        let plain = Producer(config: ClientConfig(namesrvAddr: "127.0.0.1:1"))
        let plainSlice = try await plain.client.makeTaskExecutor().eventLoop.submit { ThreadSlice.micros() }.get()
        #expect(ClientConfig.eventLoopSliceMicrosDefault == 250 && plainSlice == (Self.kernelHasSlices ? 250 : nil), "the default")
        await plain.shutdown()
        var zeroConfig = ClientConfig(namesrvAddr: "127.0.0.1:1")
        zeroConfig.eventLoopSliceMicros = 0
        let zero = Producer(config: zeroConfig)
        let zeroSlice = try await zero.client.makeTaskExecutor().eventLoop.submit { ThreadSlice.micros() }.get()
        #expect(zeroSlice == ThreadSlice.micros(), "0 leaves the kernel's slice")
        await zero.shutdown()
    }
}
