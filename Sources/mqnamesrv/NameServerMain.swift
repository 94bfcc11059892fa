#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import Common
import NameServer
import Remoting
import NIOCore
import NIOPosix

/// `mqnamesrv [-c namesrv.properties] [-p]`: RocketMQ's NameServer on `listenPort` (9876).
@main
struct NameServerMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqnamesrv", abstract: "RocketMQ-compatible NameServer (broker registry and topic routes).")

    @Option(name: .short, help: "namesrv.properties (keys: listenPort, scanNotActiveBrokerInterval, brokerChannelExpiredTime)")
    var configFile: String?
    @Flag(name: .short, help: "Print the effective configuration and exit")
    var printConfig = false

    func run() async throws {
        TerminationSignal.install()  // before anything starts: an early SIGTERM still stops gracefully
        var config = NamesrvConfig()
        if let configFile {
            do {
                try PropertiesFile.load(configFile).apply(warn: { logLine("mqnamesrv: warning: \($0)") }) { key, value throws(PropertiesFile.ConfigError) in
                    switch key {
                    case "listenPort": config.listenPort = Int(try PropertiesFile.integer(value, in: 0...65_535))
                    case "scanNotActiveBrokerInterval": config.scanNotActiveBrokerIntervalMillis = try PropertiesFile.integer(value, in: 100...3_600_000)
                    case "brokerChannelExpiredTime": config.brokerChannelExpiredTimeMillis = try PropertiesFile.integer(value, in: 1_000...86_400_000)
                    case "serverChannelMaxIdleTimeSeconds":
                        config.connectionLimits.idleTimeoutMillis = try PropertiesFile.integer(value, in: 1...86_400) * 1000
                    case "kvConfigPath", "configStorePath", "orderMessageEnable", "rocketmqHome", "serverWorkerThreads",
                         "serverSelectorThreads", "clientRequestThreadPoolNums", "defaultThreadPoolNums":
                        return true  // RocketMQ keys with no effect here
                    default: return false
                    }
                    return true
                }
            } catch {
                logLine("mqnamesrv: \(error)")
                throw ExitCode(2)
            }
        }
        if printConfig {
            logLine("listenPort=\(config.listenPort)\nscanNotActiveBrokerInterval=\(config.scanNotActiveBrokerIntervalMillis)\nbrokerChannelExpiredTime=\(config.brokerChannelExpiredTimeMillis)")
            return
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let nameServer = try await NamesrvController(config: config, group: group, log: { logLine($0) })
        logLine("The Name Server boot success. serializeType=JSON, port=\(nameServer.port)")
        await waitForTerminationSignal()
        logLine("mqnamesrv: shutting down")
        try await nameServer.close()
        try await group.shutdownGracefully()
    }
}

