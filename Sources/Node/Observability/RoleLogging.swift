#if canImport(Glibc)
import Glibc
#endif
import Logging

/// The logger names RocketMQ's logback configuration uses, and the files they go to under a role's logs
/// directory (`<storePathRootDir>/logs/` for a broker, `~/logs/rocketmqlogs/` for a NameServer by default).
public enum LoggerName {
    /// Controller, managers, processors, registration, slave synchronisation: `broker.log`.
    public static let broker = "RocketmqBroker"
    /// Commit log, consume queues, index, dispatch, recovery and master/slave HA (RocketMQ 4.x logs HA to the
    /// store's logger too): `store.log`.
    public static let store = "RocketmqStore"
    /// Connections and frames (bad input, idle closes): `remoting.log`.
    public static let remoting = "RocketmqRemoting"
    /// The DLedger Raft group (elections, replication, truncation): `dledger.log`.
    public static let dledger = "RocketmqDLedger"
    /// The NameServer's routes and liveness: `namesrv.log`.
    public static let namesrv = "RocketmqNamesrv"

    /// The broker's files by logger name; any other label (a library's) goes to `broker_default.log`.
    public static let brokerFiles = [broker: "broker.log", store: "store.log", remoting: "remoting.log", dledger: "dledger.log"]
    /// The NameServer's files; any other label goes to `namesrv_default.log`.
    public static let namesrvFiles = [namesrv: "namesrv.log", remoting: "remoting.log"]
}

/// Process-wide logging for one role: swift-log bootstrapped once with a `FileLogHandler` per file.
public enum RoleLogging {
    /// Creates `directory` (and its parents), opens one file per entry of `files` plus `defaultFile`, and
    /// bootstraps swift-log with them. Call once, first thing in a role's `main`.
    ///
    /// The level comes from `ROCKETMQ_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`; default `INFO`).
    /// - Throws: `LogSetupError` when the directory or a file cannot be made.
    public static func bootstrap(directory: String, files: [String: String], defaultFile: String,
                                 console: Bool = true) throws(LogSetupError) {
        try makeDirectories(directory)
        var opened: [String: LogFile] = [:]
        for (label, name) in files { opened[label] = try LogFile(path: directory + "/" + name) }
        let fallback = try LogFile(path: directory + "/" + defaultFile)
        let level = levelFromEnvironment()
        LoggingSystem.bootstrap { label in
            FileLogHandler(label: label, file: opened[label] ?? fallback, level: level, console: console)
        }
    }

    /// `ROCKETMQ_LOG_LEVEL`, RocketMQ's names or swift-log's.
    static func levelFromEnvironment() -> Logger.Level {
        guard let raw = getenv("ROCKETMQ_LOG_LEVEL") else { return .info }
        switch String(cString: raw).lowercased() {
        case "trace": return .trace
        case "debug": return .debug
        case "warn", "warning": return .warning
        case "error": return .error
        default: return .info
        }
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws(LogSetupError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw LogSetupError(message: "cannot create log directory \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// RocketMQ's NameServer default: `$HOME/logs/rocketmqlogs`.
    public static var defaultNamesrvDirectory: String {
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/logs/rocketmqlogs"
    }
}

extension Logger {
    /// A `(String) -> Void` sink for the modules below swift-log (CommitLog, IndexFile, Replication take their
    /// log as a closure and never import a logging library). Their lines report events or failures; a line
    /// that says something failed is logged as WARN, the rest as INFO.
    public var sink: @Sendable (String) -> Void {
        let logger = self
        return { text in logger.log(level: Self.levelOf(text), Logger.Message(stringLiteral: text)) }
    }

    /// WARN for the words the lower modules use when something went wrong.
    static func levelOf(_ text: String) -> Logger.Level {
        for word in ["error", "cannot", "refused", "corrupt", "failed", "truncat", "bad ", "dropped", "timed out", "lost", "closing"]
        where text.contains(word) {
            return .warning
        }
        return .info
    }
}
