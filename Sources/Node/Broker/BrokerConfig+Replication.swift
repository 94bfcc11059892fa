import Common
import Replication

extension BrokerConfig {
    /// The replication keys of `broker.conf`; false when the key is unknown.
    mutating func setReplicationKey(_ key: String, _ value: String) throws(PropertiesFile.ConfigError) -> Bool {
        func integer(_ range: ClosedRange<Int64>) throws(PropertiesFile.ConfigError) -> Int64 { try PropertiesFile.integer(value, in: range) }
        func boolean() throws(PropertiesFile.ConfigError) -> Bool {
            guard value == "true" || value == "false" else {
                throw PropertiesFile.ConfigError(description: "must be true or false, not \"\(value)\"")
            }
            return value == "true"
        }
        switch key {
        case "haListenPort":
            ha.haListenPort = Int(try integer(0...65_535))
            haListenPortSet = true
        case "haMasterAddress":
            guard value.isEmpty || value.contains(":") else {
                throw PropertiesFile.ConfigError(description: "must be host:port of the master's HA port, not \"\(value)\"")
            }
            haMasterAddress = value.isEmpty ? nil : value
        case "brokerIP2": brokerIP2 = value
        case "haTransferBatchSize": ha.haTransferBatchSize = Int(try integer(1...(4 << 20)))
        case "haSendHeartbeatInterval": ha.haSendHeartbeatIntervalMillis = Int(try integer(1...3_600_000))
        case "haHousekeepingInterval": ha.haHousekeepingIntervalMillis = Int(try integer(1...3_600_000))
        case "haMaxGapNotInSync", "haSlaveFallbehindMax": ha.haMaxGapNotInSync = UInt64(try integer(1...(1 << 40)))
        case "slaveTimeout": ha.slaveTimeoutMillis = Int(try integer(1...600_000))
        case "slaveReadEnable": slaveReadEnable = try boolean()
        case "accessMessageInMemoryMaxRatio": accessMessageInMemoryMaxRatio = Int(try integer(1...100))
        case "slaveSynchronizeInterval": slaveSynchronizeIntervalMillis = try integer(100...3_600_000)
        default: return try setDLedgerKey(key, value)
        }
        return true
    }

    /// Checks what only the whole file can tell: a slave needs an id above 0 (a master is always 0), and the HA
    /// port follows `listenPort + 1` unless set.
    mutating func settle() throws(PropertiesFile.ConfigError) {
        if !haListenPortSet { ha.haListenPort = listenPort == 0 ? 0 : listenPort + 1 }
        if dledgerEnabled { return try settleDLedger() }
        switch brokerRole {
        case .slave:
            guard brokerID > 0 else {
                throw PropertiesFile.ConfigError(description: "brokerRole=SLAVE needs brokerId > 0 (0 is the master's)")
            }
        case .asyncMaster, .syncMaster:
            guard brokerID == 0 else {
                throw PropertiesFile.ConfigError(description: "brokerRole=\(brokerRole.rawValue) needs brokerId=0, not \(brokerID) (ids above 0 are slaves)")
            }
        }
        do { _ = try ha.validated() } catch {
            throw PropertiesFile.ConfigError(description: error.message)
        }
    }

    /// The HA address slaves connect to (advertised to the NameServers).
    func haServerAddress(port: Int) -> String { "\(brokerIP2 ?? brokerIP1):\(port)" }
}
