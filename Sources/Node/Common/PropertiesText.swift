/// `key=value` lines of a config body (RocketMQ's `MixAll.string2Properties` for UPDATE_BROKER_CONFIG and
/// UPDATE_NAMESRV_CONFIG): blank lines and `#`/`!` comments skipped, a line without `=` is an error naming it.
public func parseProperties(_ text: String) -> Result<[(String, String)], PropertiesError> {
    var pairs: [(String, String)] = []
    for line in text.split(whereSeparator: \.isNewline) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("!") { continue }
        guard let equals = trimmed.firstIndex(of: "=") else { return .failure(PropertiesError(line: String(line))) }
        pairs.append((String(trimmed[..<equals]).trimmingSuffix(while: { $0 == " " }),
                      String(trimmed[trimmed.index(after: equals)...].drop { $0 == " " })))
    }
    return .success(pairs)
}

public struct PropertiesError: Error, CustomStringConvertible, Sendable {
    public var line: String
    public var description: String { "not a key=value line: \(line)" }
}
