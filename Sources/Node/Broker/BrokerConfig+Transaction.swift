import Common

/// How the broker treats transactional (half) messages; keys keep their `broker.conf` spelling.
public struct TransactionSettings: Sendable, Equatable {
    /// A half message younger than this (from its born time) is not checked (`transactionTimeOut`, ms).
    public var transactionTimeOutMillis: Int64 = 6_000
    /// How often the check service scans the half queue (`transactionCheckInterval`, ms).
    public var transactionCheckIntervalMillis: Int64 = 60_000
    /// How often a producer is asked about one half message before it is discarded (`transactionCheckMax`).
    public var transactionCheckMax = 15
    /// Whether half messages are refused with NO_PERMISSION (`rejectTransactionMessage`).
    public var rejectTransactionMessage = false

    public init() {}
}

extension BrokerConfig {
    /// The transaction keys of `broker.conf`; false when the key is unknown.
    mutating func setTransactionKey(_ key: String, _ value: String) throws(PropertiesFile.ConfigError) -> Bool {
        func integer(_ range: ClosedRange<Int64>) throws(PropertiesFile.ConfigError) -> Int64 { try PropertiesFile.integer(value, in: range) }
        switch key {
        case "transactionTimeOut", "transactionTimeout": transaction.transactionTimeOutMillis = try integer(0...86_400_000)
        case "transactionCheckInterval": transaction.transactionCheckIntervalMillis = try integer(10...86_400_000)
        case "transactionCheckMax": transaction.transactionCheckMax = Int(try integer(0...10_000))
        case "rejectTransactionMessage":
            guard value == "true" || value == "false" else {
                throw PropertiesFile.ConfigError(description: "must be true or false, not \"\(value)\"")
            }
            transaction.rejectTransactionMessage = value == "true"
        default: return try setReplicationKey(key, value)
        }
        return true
    }
}
