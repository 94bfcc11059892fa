/// Where a role serves Prometheus' text format, under RocketMQ 5's keys: `metricsExporterType=PROM` turns it on
/// (`DISABLE`, the default, leaves it off), `metricsPromExporterHost` and `metricsPromExporterPort` (5557 as in
/// RocketMQ; 0 picks a free port, printed at start).
public struct MetricsSettings: Sendable, Equatable {
    public var enabled = false
    public var host = "0.0.0.0"
    public var port = 5557

    public init() {}

    /// Applies one key; false when it is not a metrics key.
    public mutating func set(_ key: String, _ value: String) throws(MetricsSettingsError) -> Bool {
        switch key {
        case "metricsExporterType":
            switch value {
            case "PROM": enabled = true
            case "DISABLE": enabled = false
            default: throw MetricsSettingsError(description: "must be PROM or DISABLE, not \"\(value)\"")
            }
        case "metricsPromExporterHost": host = value.isEmpty ? "0.0.0.0" : value
        case "metricsPromExporterPort":
            guard let port = Int(value), (0...65_535).contains(port) else {
                throw MetricsSettingsError(description: "must be an integer in 0...65535, not \"\(value)\"")
            }
            self.port = port
        default: return false
        }
        return true
    }
}

/// A bad metrics key's value (the caller adds file and line).
public struct MetricsSettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
