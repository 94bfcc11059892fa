#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import Common
import Logging
import NameServer
import Observability
import Remoting
import ServiceLifecycle
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
    @Option(name: .long, help: "Directory for namesrv.log and remoting.log (default ~/logs/rocketmqlogs, as RocketMQ's)")
    var logsDir: String?

    func run() async throws {
        TerminationSignal.install()  // before anything starts: an early SIGTERM still stops gracefully
        var config = NamesrvConfig()
        var warnings: [String] = []
        if let configFile {
            do {
                try PropertiesFile.load(configFile).apply(warn: { warnings.append("mqnamesrv: warning: \($0)") },
                                                          unsupported: NamesrvConfig.unsupportedKeys) { key, value throws(PropertiesFile.ConfigError) in
                    switch key {
                    case "listenPort": config.listenPort = Int(try PropertiesFile.integer(value, in: 0...65_535))
                    case "scanNotActiveBrokerInterval": config.scanNotActiveBrokerIntervalMillis = try PropertiesFile.integer(value, in: 100...3_600_000)
                    case "brokerChannelExpiredTime": config.brokerChannelExpiredTimeMillis = try PropertiesFile.integer(value, in: 1_000...86_400_000)
                    case "serverChannelMaxIdleTimeSeconds":
                        config.connectionLimits.idleTimeoutMillis = try PropertiesFile.integer(value, in: 1...86_400) * 1000
                    case "orderMessageEnable":
                        guard value == "true" || value == "false" else {
                            throw PropertiesFile.ConfigError(description: "must be true or false, not \"\(value)\"")
                        }
                        config.orderMessageEnable = value == "true"
                    default:
                        do { return try config.metrics.set(key, value) } catch {
                            throw PropertiesFile.ConfigError(description: "\(error)")
                        }
                    }
                    return true
                }
            } catch {
                for warning in warnings { logLine(warning) }  // no log files yet: stdout only
                logLine("mqnamesrv: \(error)")
                throw ExitCode(2)
            }
        }
        if printConfig {
            for warning in warnings { logLine(warning) }  // -p checks a file: say what it ignores
            logLine(config.properties.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
            return
        }
        var ports: [(key: String, port: Int, host: String?)] = [("listenPort", config.listenPort, nil)]
        if config.metrics.enabled { ports.append(("metricsPromExporterPort", config.metrics.port, config.metrics.host)) }
        if let failure = PortProbe.firstUnavailable(ports) {
            logLine("mqnamesrv: \(PortProbe.refusal(failure, file: configFile))")
            throw ExitCode(1)
        }
        let logsDirectory = logsDir ?? RoleLogging.defaultNamesrvDirectory
        do {
            try RoleLogging.bootstrap(directory: logsDirectory, files: LoggerName.namesrvFiles, defaultFile: "namesrv_default.log")
        } catch {
            logLine("mqnamesrv: \(error)")
            throw ExitCode(2)
        }
        let logger = Logger(label: LoggerName.namesrv)
        for warning in warnings { logger.warning("\(warning)") }
        try await serve(config: config, logger: logger, logsDirectory: logsDirectory)
    }

    func serve(config: NamesrvConfig, logger: Logger, logsDirectory: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let nameServer: NamesrvController
        let metricsServer: MetricsServer?
        do {
            nameServer = try await NamesrvController(config: config, group: group, log: logger.sink,
                                                     remotingLog: Logger(label: LoggerName.remoting).sink)
        } catch {
            logger.error("mqnamesrv: cannot start: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        do {
            if config.metrics.enabled {
                let metrics = NamesrvMetrics(nameServer: nameServer)
                metricsServer = try await MetricsServer(host: config.metrics.host, port: config.metrics.port, group: group,
                                                        registry: metrics.registry, collect: { metrics.collect() })
            } else {
                metricsServer = nil
            }
        } catch {
            logger.error("mqnamesrv: cannot serve metrics on \(config.metrics.host):\(config.metrics.port): \(error); stopping")
            try? await nameServer.close()
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        let banner = Banner(role: "mqnamesrv", fields: [
            ("listen", "0.0.0.0:\(nameServer.port)"), ("metrics", metricsServer.map { "\(config.metrics.host):\($0.port)" } ?? "off"),
            ("scanNotActiveBrokerInterval", "\(config.scanNotActiveBrokerIntervalMillis)"),
            ("brokerChannelExpiredTime", "\(config.brokerChannelExpiredTimeMillis)"), ("logs", logsDirectory),
            ("configFile", configFile ?? "-"),
        ])
        logger.info("\(banner.line)")
        if let metricsServer { logger.info("metrics: Prometheus text format on http://\(config.metrics.host):\(metricsServer.port)/metrics") }
        logger.info("The Name Server boot success. serializeType=JSON, port=\(nameServer.port)")
        var services: [any Service] = [StoppingService("namesrv") {
            logger.info("mqnamesrv: shutting down")
            try? await nameServer.close()
        }]
        if let metricsServer { services.append(StoppingService("metrics") { await metricsServer.close() }) }
        try await RoleLifecycle.run(services, logger: logger)
        try await group.shutdownGracefully()
    }
}
