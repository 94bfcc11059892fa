import Remoting
#if canImport(Glibc)
import Glibc
#endif


/// A `.properties` file as RocketMQ reads `broker.conf` / `namesrv.properties`: `key=value` (or
/// `key: value`, `key value`), `#`/`!` comments, surrounding spaces trimmed. Lines keep their numbers
/// so errors can name them.
public struct PropertiesFile: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var value: String
        public var line: Int
    }
    public let path: String
    public var entries: [Entry] = []

    public struct ConfigError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(path: String, text: String) {
        self.path = path
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }.trimmingSuffix(while: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = line.first, first != "#", first != "!" else { continue }
            let separator = line.firstIndex { $0 == "=" || $0 == ":" } ?? line.firstIndex(of: " ")
            let key = separator.map { String(line[..<$0]) } ?? String(line)
            let value = separator.map { String(line[line.index(after: $0)...]) } ?? ""
            entries.append(Entry(key: key.trimmingSuffix(while: { $0 == " " || $0 == "\t" }),
                                 value: String(value.drop { $0 == " " || $0 == "\t" }), line: index + 1))
        }
    }

    public static func load(_ path: String) throws(ConfigError) -> PropertiesFile {
        guard let text = TextFile.read(path) else {
            throw ConfigError(description: "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        return PropertiesFile(path: path, text: text)
    }

    /// Applies every entry through `apply`, which returns false for a key it does not take (warned about: as a
    /// RocketMQ key this role does not support when `unsupported` lists it, else as unknown) and throws a message
    /// (with the allowed values) for a bad one; the error then names file, line and key.
    public func apply(warn: (String) -> Void, unsupported: UnsupportedKeys = UnsupportedKeys(names: []),
                      _ apply: (String, String) throws(ConfigError) -> Bool) throws(ConfigError) {
        for entry in entries {
            do {
                guard try !apply(entry.key, entry.value) else { continue }
                if !unsupported.names.contains(entry.key) {
                    warn("\(path):\(entry.line): unknown key \(entry.key), ignored")
                } else if unsupported.harmless[entry.key] != entry.value {
                    warn("\(path):\(entry.line): \(entry.key) is a RocketMQ \(unsupported.role) key not supported here, ignored")
                }
            } catch {
                throw ConfigError(description: "\(path):\(entry.line): \(entry.key) \(error.description)")
            }
        }
    }

    /// Parses an integer value or says what is allowed.
    public static func integer(_ value: String, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(ConfigError) -> Int64 {
        guard let number = Int64(value), range.contains(number) else {
            throw ConfigError(description: "must be an integer in \(range.lowerBound)...\(range.upperBound), not \"\(value)\"")
        }
        return number
    }
}

/// The configuration keys RocketMQ 4.9 reads that a role here accepts without honouring: warned about by file and
/// line, so a `broker.conf` brought over from RocketMQ says what does nothing.
public struct UnsupportedKeys: Sendable {
    public var names: Set<String>
    /// Values with which ignoring the key changes nothing (`longPollingEnable=true`: this broker always long-polls);
    /// those are not warned about.
    public var harmless: [String: String]
    /// Whose keys they are, for the warning (`broker`, `NameServer`).
    public var role: String

    public init(names: Set<String>, harmless: [String: String] = [:], role: String = "") {
        self.names = names
        self.harmless = harmless
        self.role = role
    }
}

extension StringProtocol {
    public func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = String(self)
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
