/// The start-up banner every role writes first to its main log: what runs, as what, where, from which file.
public struct Banner: Sendable {
    /// The RocketMQ protocol version this server speaks (what GET_BROKER_RUNTIME_INFO reports).
    public static let rocketmqVersion = "V4_9_7"
    /// This implementation's own version.
    public static let version = "swift-rocketmq 0.13.0"

    public var role: String
    public var fields: [(String, String)]

    public init(role: String, fields: [(String, String)]) {
        self.role = role
        self.fields = fields
    }

    /// One line per event: `==== mqbroker start: version=... protocol=V4_9_7 role=... key=value ...`.
    public var line: String {
        var text = "==== \(role) start: version=\"\(Self.version)\" protocol=\(Self.rocketmqVersion)"
        for (key, value) in fields { text += " \(key)=\(value.isEmpty ? "-" : value)" }
        return text
    }
}
