import ArgumentParser
import Broker
import Common
import Logging
import NIOCore
import NIOPosix
import Observability
import Remoting
import ServiceLifecycle

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
        var warnings: [String] = []
        do {
            if let configFile { config = try BrokerConfig.load(configFile) { warnings.append($0) } }
            if let namesrvAddr { _ = try config.set("namesrvAddr", namesrvAddr) }
        } catch {
            for warning in warnings { logLine("mqbroker: warning: \(warning)") }  // no log files yet: stdout only
            logLine("mqbroker: \(error)")
            throw ExitCode(2)
        }
        if printConfig {
            for warning in warnings { logLine("mqbroker: warning: \(warning)") }  // -p checks a file: say what it ignores
            logLine(config.properties.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
            return
        }
        // Before recovery, which can take minutes on a large store: a port in use is known now.
        if let failure = PortProbe.firstUnavailable(config.listeningPorts) {
            logLine("mqbroker: \(PortProbe.refusal(failure, file: configFile))")
            throw ExitCode(1)
        }
        let logsDirectory = config.store.storePathRootDir + "/logs"
        do {
            try RoleLogging.bootstrap(directory: logsDirectory, files: LoggerName.brokerFiles, defaultFile: "broker_default.log")
        } catch {
            logLine("mqbroker: \(error)")
            throw ExitCode(2)
        }
        let logger = Logger(label: LoggerName.broker)
        for warning in warnings { logger.warning("mqbroker: warning: \(warning)") }
        try await serve(config: config, logger: logger, logsDirectory: logsDirectory)
    }

    func serve(config: BrokerConfig, logger: Logger, logsDirectory: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        if let problem = await ThreadSlice.apply(micros: config.eventLoopSliceMicros, to: group) {
            let line: Logger.Message = "mqbroker: eventLoopSliceMicros=\(config.eventLoopSliceMicros) not applied, the event loops keep the kernel's slice: \(problem)"
            if problem == ThreadSlice.unsupported { logger.info(line) } else { logger.warning(line) }
        }
        let sinks = BrokerLogSinks(broker: logger.sink, store: Logger(label: LoggerName.store).sink,
                                   remoting: Logger(label: LoggerName.remoting).sink, dledger: Logger(label: LoggerName.dledger).sink)
        let broker: BrokerController
        let metricsServer: MetricsServer?
        do {
            broker = try await BrokerController(config: config, group: group, logs: sinks)
        } catch {
            logger.error("mqbroker: cannot start: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        do {
            metricsServer = try await broker.metrics.asyncMap { metrics in
                try await MetricsServer(host: config.metrics.host, port: config.metrics.port, group: group, registry: metrics.registry,
                                        collect: { metrics.collect() })
            }
        } catch {
            logger.error("mqbroker: cannot serve metrics on \(config.metrics.host):\(config.metrics.port): \(error); stopping")
            await broker.close()  // flush and unregister: the broker already registered
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        let startBanner = banner(config, port: broker.port, haPort: broker.haPort, metricsPort: metricsServer?.port, logsDirectory: logsDirectory)
        logger.info("\(startBanner.line)")
        if let metricsServer { logger.info("metrics: Prometheus text format on http://\(config.metrics.host):\(metricsServer.port)/metrics") }
        logger.info("The broker[\(config.brokerName), \(config.brokerIP1):\(broker.port)] boot success. serializeType=JSON and name server is \(config.namesrvAddr.joined(separator: ";"))")
        var services: [any Service] = [StoppingService("broker") {
            logger.info("mqbroker: shutting down")
            await broker.close()
        }]
        if let metricsServer { services.append(StoppingService("metrics") { await metricsServer.close() }) }
        try await RoleLifecycle.run(services, logger: logger)
        try? await group.shutdownGracefully()
        logger.info("mqbroker: stopped")
    }

    func banner(_ config: BrokerConfig, port: Int, haPort: Int?, metricsPort: Int?, logsDirectory: String) -> Banner {
        let role = config.dledgerEnabled ? "DLEDGER(\(config.dledger.selfName))" : config.brokerRole.rawValue
        return Banner(role: "mqbroker", fields: [
            ("cluster", config.brokerClusterName), ("brokerName", config.brokerName), ("brokerId", "\(config.brokerID)"),
            ("brokerRole", role), ("listen", "\(config.brokerIP1):\(port)"),
            ("ha", haPort.map { "\(config.brokerIP2 ?? config.brokerIP1):\($0)" } ?? "-"),
            ("namesrvAddr", config.namesrvAddr.joined(separator: ";")), ("metrics", metricsPort.map { "\(config.metrics.host):\($0)" } ?? "off"),
            ("flushDiskType", config.store.commitLog.flushDiskType.rawValue), ("ioPath", config.store.commitLog.ioPath.rawValue),
            ("storePathRootDir", config.store.storePathRootDir), ("logs", logsDirectory), ("configFile", configFile ?? "-"),
        ])
    }
}

extension Optional {
    /// `map` with an async, throwing transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
