#if canImport(Glibc)
import Glibc
#endif
import Logging

/// One append-only log file: every line goes out with a single `write(2)` on an `O_APPEND` descriptor, so
/// lines from several threads (or several processes sharing `namesrv.log`) never interleave.
///
/// **Thread:** any. No rotation: an operator's logrotate with `copytruncate` works on `O_APPEND` files.
public final class LogFile: Sendable {
    public let path: String
    private let fd: Int32

    /// Opens (creating) `path` for appending.
    /// - Throws: `LogSetupError` naming the path and errno.
    public init(path: String) throws(LogSetupError) {
        self.path = path
        let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard opened >= 0 else { throw LogSetupError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        fd = opened
    }

    deinit { close(fd) }

    /// Appends `line` (which carries its own newline).
    public func append(_ line: String) { Self.writeWhole(line, to: fd) }

    /// Writes all of `text` to `fd`, retrying short writes and EINTR; gives up silently on other errors
    /// (a full disk must not stop the broker because it cannot log).
    static func writeWhole(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }
}

/// A log directory or file that could not be made ready.
public struct LogSetupError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// A swift-log handler writing RocketMQ's logback layout, `yyyy-MM-dd HH:mm:ss,SSS LEVEL label - message`,
/// one line per event (newlines inside a message are escaped), to the file chosen for its label. When
/// `console` is set, the bare message also goes to stdout: supervisors and tests read "boot success" there.
public struct FileLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let file: LogFile
    let console: Bool

    public init(label: String, file: LogFile, level: Logger.Level, console: Bool) {
        self.label = label
        self.file = file
        self.logLevel = level
        self.console = console
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = event.message.description
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        if !merged.isEmpty {
            text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        let oneLine = Self.escapingNewlines(text)
        file.append("\(LogTimestamp.now()) \(Self.levelName(event.level)) \(label) - \(oneLine)\n")
        if console { LogFile.writeWhole(oneLine + "\n", to: 1) }
    }

    /// RocketMQ's (logback's) level names: notice reads as INFO, critical as ERROR.
    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    static func escapingNewlines(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 10 || $0 == 13 }) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 8)
        for character in text.unicodeScalars {
            switch character {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// Local wall-clock time as logback prints it: `2026-11-30 02:30:00,123`.
enum LogTimestamp {
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)),\(pad(Int32(spec.tv_nsec / 1_000_000), 3))"
    }
}
