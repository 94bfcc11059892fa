import ArgumentParser
import Broker
import Common
import NIOCore
import NIOPosix

/// `mqbroker -c broker.conf [-n namesrvAddr]`: a RocketMQ-compatible broker over the MessageStore.
@main
struct BrokerMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mqbroker", abstract: "RocketMQ-compatible broker.")

    @Option(name: .short, help: "broker.conf with RocketMQ's keys") var configFile: String?
    @Option(name: .short, help: "NameServer addresses, host:port;host:port (overrides namesrvAddr)") var namesrvAddr: String?
    @Flag(name: .short, help: "Print the effective configuration and exit") var printConfig = false

    func run() async throws {
        TerminationSignal.install()  // before anything starts: an early SIGTERM still stops gracefully
        var config = BrokerConfig(storePathRootDir: "/tmp/rmqstore")
        do {
            if let configFile { config = try BrokerConfig.load(configFile) { logLine("mqbroker: warning: \($0)") } }
            if let namesrvAddr { _ = try config.set("namesrvAddr", namesrvAddr) }
        } catch {
            logLine("mqbroker: \(error)")
            throw ExitCode(2)
        }
        if printConfig {
            logLine("brokerName=\(config.brokerName)\nlistenPort=\(config.listenPort)\nnamesrvAddr=\(config.namesrvAddr.joined(separator: ";"))\nstorePathRootDir=\(config.store.storePathRootDir)\nflushDiskType=\(config.store.commitLog.flushDiskType.rawValue)\nioPath=\(config.store.commitLog.ioPath.rawValue)")
            return
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let broker: BrokerController
        do {
            broker = try await BrokerController(config: config, group: group, log: { logLine($0) })
        } catch {
            logLine("mqbroker: cannot start: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        logLine("The broker[\(config.brokerName), \(config.brokerIP1):\(broker.port)] boot success. serializeType=JSON and name server is \(config.namesrvAddr.joined(separator: ";"))")
        await waitForTerminationSignal()
        logLine("mqbroker: shutting down")
        await broker.close()
        try? await group.shutdownGracefully()
        logLine("mqbroker: stopped")
    }
}
