import ArgumentParser
import Common
import Dashboard
import Logging
import Observability

/// `mqdashboard -n 127.0.0.1:9876 [--port 8080] [--host 127.0.0.1] [--enable-writes]`: the web console.
@main
struct DashboardMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqdashboard", abstract: "Web console for a RocketMQ cluster (cluster, topics, consumer groups, messages).")

    @Option(name: .short, help: "NameServer addresses, host:port;host:port") var namesrvAddr: String
    @Option(help: "Address to listen on") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one)") var port = 8080
    @Flag(help: "Allow creating and deleting topics and resetting consumer offsets") var enableWrites = false

    func run() async throws {
        TerminationSignal.install()  // SIGTERM, SIGINT and MQ_EXIT_WITH_PARENT stop the server gracefully
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = .notice
            return handler
        }
        var settings = DashboardSettings(namesrvAddr: namesrvAddr)
        settings.host = host
        settings.port = port
        settings.writesEnabled = enableWrites
        let dashboard = Dashboard(settings: settings)
        try await dashboard.run(logger: Logger(label: "mqdashboard")) { [host, namesrvAddr, enableWrites] bound in
            logLine("mqdashboard: serving http://\(host):\(bound)/ for NameServer \(namesrvAddr)\(enableWrites ? " (writes enabled)" : "")")
        }
    }
}
