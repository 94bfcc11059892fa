import CommitLog
import IndexFile
import Broker
import Client
import Common
import NameServer
import Remoting
import Replication
import Testing
import TestSupport

/// `bench producer` and `bench consumer` as users run them: real processes, the asked-for JSON keys,
/// every message sent is received.
@Suite(.serialized) struct BenchCommandTests {
    func bench(_ arguments: [String], seconds: Double = 120) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable("bench") else { throw StoreError(.io, "bench is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    @Test func producerWithItsOwnClusterPrintsLinesPercentilesAndJSON() throws {
        let directory = TemporaryDirectory("bench-json")
        let json = directory.path + "/result.json"
        let run = try bench(["producer", "-w", "4", "-s", "128", "--messages", "3000", "--json", json])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("Started a local NameServer"))
        #expect(run.output.contains("Send RT (ms):  p50 ") && run.output.contains("p99.99"))
        let text = readTextFile(json) ?? ""
        let parsed = try JSONValue.parse(text)
        for key in ["tps", "mbps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "failed"] {
            #expect(parsed[key] != nil, "missing \(key) in \(text)")
        }
        #expect(parsed["messages"]?.int == 3000 && parsed["failed"]?.int == 0, "\(text)")
        if case .number(let tps)? = parsed["tps"] { #expect(tps > 0) } else { #expect(parsed["tps"]?.int ?? 0 > 0, "\(text)") }
    }

    @Test func consumerReceivesWhatTheProducerSent() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let sent = try bench(["producer"] + n + ["-w", "2", "-s", "64", "--messages", "500", "--mode", "async"])
        #expect(sent.status == 0, "\(sent.output)")
        let directory = TemporaryDirectory("bench-consumer")
        let json = directory.path + "/consumer.json"
        let consumed = try bench(["consumer"] + n + ["-t", "BenchmarkTest", "-g", "BenchGroup", "--duration", "4", "--from-first", "--json", json])
        #expect(consumed.status == 0, "\(consumed.output)")
        #expect(consumed.output.contains("Consume TPS: "))
        let parsed = try JSONValue.parse(readTextFile(json) ?? "{}")
        // 500 plus the producer's one warm-up message.
        #expect(parsed["messages"]?.int == 501, "\(consumed.output)")
    }
}
