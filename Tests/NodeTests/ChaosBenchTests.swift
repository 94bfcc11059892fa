#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile
import Remoting
import Testing
import TestSupport

/// `bench chaos` as users run it: real mqnamesrv/mqbroker processes, faults injected under load, everything read
/// back. Under SYNC_MASTER and in a DLedger group no acknowledged message may be lost (read back, and in every
/// node's own log once the cluster is whole), and when the bench is done
/// (or interrupted) no process, store directory or network namespace it made is left. Each run is short (about
/// 20 s of load) and bounded by the harness's deadline.
@Suite(.serialized) struct ChaosBenchTests {
    static let namespacesAvailable: Bool = {
        guard geteuid() == 0, access("/usr/sbin/ip", X_OK) == 0 else { return false }
        let probe = "mqctest\(getpid())"
        let added = system("/usr/sbin/ip netns add \(probe) 2>/dev/null") == 0
        if added { _ = system("/usr/sbin/ip netns del \(probe)") }
        return added
    }()

    /// Why powerfs (Tests/powerloss/powerfs.py) cannot mount here, by its own probe (nil when it can).
    static let powerUnavailable: String? = {
        guard geteuid() == 0 else { return "power faults need root (powerfs calls mount(2))" }
        let script = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/") + "/Tests/powerloss/powerfs.py"
        guard let probe = try? ChildProcess.run(["/usr/bin/env", "python3", script, "--probe"], seconds: 60) else {
            return "cannot run python3 \(script) --probe"
        }
        return probe.status == 0 ? nil : "powerfs --probe: \(probe.output)"
    }()

    func bench(_ arguments: [String], seconds: Double = 150) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    /// The store directory the run printed (`stores and logs in /tmp/bench-...`).
    static func directory(in output: String) -> String? {
        guard let range = output.firstRange(of: "stores and logs in ") else { return nil }
        return String(output[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// Nothing of the run is left: its directory is gone, no process mentions it, no namespace of its prefix.
    static func expectCleanedUp(_ output: String) {
        guard let directory = directory(in: output) else {
            Issue.record("no store directory in the output: \(output)")
            return
        }
        #expect(access(directory, F_OK) != 0, "\(directory) was not removed")
        var leftovers: [String] = []
        if let entries = opendir("/proc") {
            defer { closedir(entries) }
            while let entry = readdir(entries) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard Int(name) != nil, let command = readTextFile("/proc/\(name)/cmdline") else { continue }
                if command.contains(directory) { leftovers.append(name) }
            }
        }
        #expect(leftovers.isEmpty, "processes of the run still running: \(leftovers)")
        let mounts = (readTextFile("/proc/self/mountinfo") ?? "").split(separator: "\n").filter { $0.contains(directory) }
        #expect(mounts.isEmpty, "mounts of the run left: \(mounts)")
        if let range = output.firstRange(of: "network namespace ") {
            let prefix = String(output[range.upperBound...].prefix { !$0.isWhitespace && $0 != "*" && $0 != ")" })
            let listing = (try? ChildProcess.run(["/usr/sbin/ip", "netns", "list"], seconds: 10).output) ?? ""
            #expect(!listing.contains(prefix), "namespaces \(prefix)* left: \(listing)")
        }
    }

    func runChaos(cluster: String, nodes: [String], extra: [String]) throws {
        let directory = TemporaryDirectory("chaos-json")
        let json = directory.path + "/chaos.json"
        let faults = Self.namespacesAvailable ? "kill,suspend,partition" : "kill,suspend"
        let run = try bench(["chaos", "--cluster", cluster, "--faults", faults, "--interval", "4", "--duration", "20", "--rate", "100",
                             "--seed", "11", "--json", json] + extra)
        #expect(run.status == 0, "\(run.output)")
        let parsed = try JSONValue.parse(readTextFile(json) ?? "")
        #expect(parsed["lost"]?.int == 0, "acknowledged messages lost: \(run.output)")
        #expect((parsed["acknowledged"]?.int ?? 0) > 300, "the load ran: \(run.output)")
        #expect(parsed["kept"] == .bool(true), "\(run.output)")
        if extra.contains("--orderly") {
            #expect(parsed["out_of_order"]?.int == 0, "orderly sends read back out of order: \(run.output)")
        } else {
            #expect(parsed["out_of_order"] == .null, "\(run.output)")
        }
        for node in nodes {
            #expect(parsed["replicas"]?[node]?["missing"]?.int == 0, "\(node)'s own log lacks acknowledged messages: \(run.output)")
        }
        #expect(run.output.contains("KEPT: all "), "\(run.output)")
        #expect(run.output.contains("Fault schedule (seed 11"), "\(run.output)")
        let injected = run.output.split(separator: "\n").filter { $0.hasPrefix("[") && !$0.contains("healed") }
        #expect(injected.count == 4, "a fault every 4 s while it and its pause end before 20 s: \(run.output)")
        Self.expectCleanedUp(run.output)
    }

    @Test func aDLedgerGroupLosesNoAcknowledgedMessageUnderKillAndSuspend() throws {
        try runChaos(cluster: "dledger", nodes: ["n0", "n1", "n2"], extra: [])
    }

    /// With orderly sends (one sender per queue), which must also be read back in the order they were sent.
    @Test func aSyncMasterLosesNoAcknowledgedMessageUnderKillAndSuspend() throws {
        try runChaos(cluster: "master-slave", nodes: ["master", "slave"], extra: ["--replication", "sync", "--flush", "sync", "--orderly"])
    }

    /// An unsupported cluster kind or fault is refused before anything starts (no directory, no process).
    @Test func badClusterOrFaultIsRefusedBeforeAnythingStarts() throws {
        for arguments in [["--cluster", "raft5"], ["--faults", "kill,meteor"], ["--faults", "kill", "--interval", "0"],
                          ["--faults", "power", "--powerfs", "/nonexistent/powerfs.py"]] {
            let run = try bench(["chaos"] + arguments, seconds: 20)
            #expect(run.status != 0 && run.status != nil, "\(arguments): \(run.output)")
            #expect(run.output.contains("Error:") && !run.output.contains("Started"), "\(arguments): \(run.output)")
        }
    }

    /// A power fault where FUSE cannot mount (powerfs pointed at a device that does not exist, as on a machine
    /// without /dev/fuse) is refused in one line before anything starts; the same run without `power` needs no FUSE.
    @Test func powerWithoutFUSEIsRefusedBeforeAnythingStarts() throws {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        let refused = try ChildProcess.run(["/usr/bin/env", "POWERFS_DEVICE=/nonexistent/fuse", binary, "chaos", "--faults", "kill,power"],
                                           seconds: 60)
        #expect(refused.status != 0 && refused.status != nil, "\(refused.output)")
        let error = refused.output.split(separator: "\n").first { $0.hasPrefix("Error:") } ?? ""
        #expect(error.contains("--faults power needs FUSE"), "\(refused.output)")
        #expect(geteuid() != 0 || error.contains("/nonexistent/fuse"), "the reason is powerfs's own: \(refused.output)")
        #expect(!refused.output.contains("Started") && !refused.output.contains("Fault schedule"), "\(refused.output)")
        let help = try bench(["chaos", "--help"], seconds: 20)
        #expect(help.output.contains("leader-power"), "\(help.output)")
    }

    /// Power cuts (each store on its own powerfs mount; a cut freezes it, SIGKILLs the node, drops what was not
    /// fsynced, remounts and restarts after the pause) on a random node and on the leader, where the mode promises
    /// that nothing acknowledged is lost: a DLedger group on SYNC_FLUSH and a SYNC_MASTER on SYNC_FLUSH. 25 s of
    /// planned load each (a restart on powerfs takes seconds, so the load runs on until the last cut is healed);
    /// every mount and process gone afterwards.
    @Test(.enabled(if: powerUnavailable == nil, Comment(rawValue: powerUnavailable ?? "")))
    func aSyncFlushDLedgerGroupLosesNoAcknowledgedMessageUnderPowerCuts() throws {
        try runPowerChaos(cluster: "dledger", nodes: ["n0", "n1", "n2"], extra: ["--flush", "sync"])
    }

    @Test(.enabled(if: powerUnavailable == nil, Comment(rawValue: powerUnavailable ?? "")))
    func aSyncMasterOnSyncFlushLosesNoAcknowledgedMessageUnderPowerCuts() throws {
        try runPowerChaos(cluster: "master-slave", nodes: ["master", "slave"], extra: ["--replication", "sync", "--flush", "sync"])
    }

    func runPowerChaos(cluster: String, nodes: [String], extra: [String]) throws {
        let directory = TemporaryDirectory("chaos-power")
        let json = directory.path + "/chaos.json"
        let run = try bench(["chaos", "--cluster", cluster, "--faults", "power,leader-power", "--interval", "5", "--pause", "2.5",
                             "--duration", "25", "--rate", "100", "--seed", "7", "--json", json] + extra, seconds: 240)
        #expect(run.status == 0, "\(run.output)")
        let parsed = try JSONValue.parse(readTextFile(json) ?? "")
        #expect(parsed["lost"]?.int == 0, "acknowledged messages lost: \(run.output)")
        #expect((parsed["acknowledged"]?.int ?? 0) > 300, "the load ran: \(run.output)")
        #expect(parsed["kept"] == .bool(true) && parsed["promises_no_loss"] == .bool(true), "\(run.output)")
        for node in nodes {
            #expect(parsed["replicas"]?[node]?["missing"]?.int == 0, "\(node)'s own log lacks acknowledged messages: \(run.output)")
        }
        let cuts = run.output.split(separator: "\n").filter { $0.hasPrefix("[") && !$0.contains("healed") }
        #expect(cuts.count == 4, "a cut every 5 s while it and its pause end before 25 s: \(run.output)")
        #expect(cuts.contains { $0.contains("] power ") } && cuts.contains { $0.contains("] leader-power ") }, "\(cuts)")
        #expect(cuts.allSatisfy { $0.contains("power") && $0.contains("unsynced ") && $0.contains(" bytes, torn ") }, "\(cuts)")
        #expect(run.output.contains("powerfs mount"), "\(run.output)")
        Self.expectCleanedUp(run.output)
    }

    /// Ctrl-C in the middle of a run: it stops injecting, heals, reads back and prints what it measured, and
    /// leaves nothing behind.
    @Test func anInterruptedRunReportsWhatItMeasuredAndCleansUp() throws {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        // With a powerfs mount per store when FUSE works here: the interrupt detaches them too.
        let faults = [Self.namespacesAvailable ? "partition" : "kill"] + (Self.powerUnavailable == nil ? ["power"] : [])
        let child = try ChildProcess([binary, "chaos", "--cluster", "dledger", "--faults", faults.joined(separator: ","),
                                      "--interval", "3", "--duration", "120", "--rate", "100", "--flush", "sync"], mergeStandardError: true)
        var lines: [String] = []
        let deadline = monotonicNanos() + 120_000_000_000
        while monotonicNanos() < deadline, !lines.contains(where: { $0.contains("healed") }), let more = child.readLines(timeoutMillis: 100) {
            lines += more
        }
        #expect(lines.contains { $0.contains("healed") }, "a fault was injected and healed: \(lines)")
        kill(child.pid, SIGINT)
        // Until the bench closes its output (it exits after stopping everything).
        while monotonicNanos() < deadline, let more = child.readLines(timeoutMillis: 100) { lines += more }
        let status = child.terminate(seconds: 5)
        let output = (lines + child.drain()).joined(separator: "\n")
        #expect(output.contains("(INTERRUPTED)") && output.contains("KEPT: all "), "\(output)")
        #expect(status == 0, "\(output)")
        Self.expectCleanedUp(output)
    }
}
