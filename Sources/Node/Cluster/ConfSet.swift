#if canImport(Glibc)
import Glibc
#endif
import Common

/// What stops `mqcluster`: a bad conf set, a port in use, a role that died or did not answer. The text says what,
/// where (file, line, key when there is one) and what happened next.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One role of a conf set: a NameServer (`namesrv*.properties`) or a broker (`broker*.properties`), named after its
/// file (`broker-a-s.properties` is the role `broker-a-s`).
public struct ClusterRole: Sendable {
    public enum Kind: Sendable, Equatable { case nameServer, broker }

    /// A port the role binds, and the line of its file that decides it (for port-clash errors).
    public struct BoundPort: Sendable {
        public var port: Int
        public var key: String
        public var line: Int
    }

    public var kind: Kind
    public var name: String
    /// The file's path as given (relative to the working directory when CONF_DIR was).
    public var file: String
    public var properties: PropertiesFile
    public var listenPort: Int
    public var host = "127.0.0.1"
    public var brokerClusterName = "DefaultCluster"
    public var brokerName = ""
    public var brokerID: Int64 = 0
    /// `brokerRole` as written (ASYNC_MASTER, SYNC_MASTER, SLAVE); DLedger members say `DLEDGER`.
    public var brokerRole = "ASYNC_MASTER"
    public var dledgerSelfID: String?
    /// `storePathRootDir` as written; relative paths resolve against the set's run directory.
    public var storePathRootDir: String?
    public var ports: [BoundPort] = []

    public var address: String { "\(host):\(listenPort)" }
    public var executable: String { kind == .nameServer ? "mqnamesrv" : "mqbroker" }
    public var isMaster: Bool { dledgerSelfID == nil && brokerID == 0 }

    init(kind: Kind, name: String, properties: PropertiesFile) {
        self.kind = kind
        self.name = name
        self.file = properties.path
        self.properties = properties
        listenPort = kind == .nameServer ? 9876 : 10911
        for entry in properties.entries { apply(entry) }
        if kind == .broker { ports += derivedBrokerPorts() }
    }

    private mutating func apply(_ entry: PropertiesFile.Entry) {
        switch entry.key {
        case "listenPort":
            listenPort = Int(entry.value) ?? listenPort
            ports.removeAll { $0.key == "listenPort" }
            ports.append(BoundPort(port: listenPort, key: "listenPort", line: entry.line))
        case "brokerClusterName": brokerClusterName = entry.value
        case "brokerName": brokerName = entry.value
        case "brokerId": brokerID = Int64(entry.value) ?? 0
        case "brokerRole": brokerRole = entry.value
        case "brokerIP1": host = entry.value
        case "storePathRootDir": storePathRootDir = entry.value
        case "dLegerSelfId", "dLedgerSelfId": dledgerSelfID = entry.value
        default: break
        }
    }

    /// A master's HA port (`haListenPort`, else `listenPort + 1`) and a DLedger member's own peer port.
    private mutating func derivedBrokerPorts() -> [BoundPort] {
        if ports.isEmpty { ports.append(BoundPort(port: listenPort, key: "listenPort", line: 0)) }
        let entries = properties.entries
        let dledger = entries.contains { $0.key.hasPrefix("enableDL") && $0.value == "true" }
        if dledger {
            brokerRole = "DLEDGER"
            guard let selfID = dledgerSelfID, let peers = entries.last(where: { $0.key == "dLegerPeers" || $0.key == "dLedgerPeers" })
            else { return [] }
            for peer in peers.value.split(separator: ";") where peer.hasPrefix(selfID + "-") {
                if let port = peer.split(separator: ":").last.flatMap({ Int($0) }) {
                    return [BoundPort(port: port, key: "dLegerPeers", line: peers.line)]
                }
            }
            return []
        }
        guard brokerRole != "SLAVE" else { return [] }
        if let ha = entries.last(where: { $0.key == "haListenPort" }), let port = Int(ha.value), port > 0 {
            return [BoundPort(port: port, key: "haListenPort", line: ha.line)]
        }
        return [BoundPort(port: listenPort + 1, key: "listenPort (HA port listenPort + 1)", line: ports[0].line)]
    }
}

/// A conf set as RocketMQ's distribution ships them (`conf/2m-2s-sync`): one directory holding a
/// `namesrv*.properties` per NameServer and a `broker*.properties` (or `.conf`) per broker.
public struct ConfSet: Sendable {
    public var directory: String
    /// The directory's last component (`2m-2s-sync`): the set's run directory is `<root>/<name>`.
    public var name: String
    public var nameServers: [ClusterRole]
    public var brokers: [ClusterRole]
    public var roles: [ClusterRole] { nameServers + brokers }

    /// Reads every role file of `directory`.
    /// - Throws: `ClusterError` when the directory is missing, holds no NameServer or no broker file, a file
    ///   cannot be read, or two roles claim one port (both named, with file and line).
    public static func load(_ directory: String) throws(ClusterError) -> ConfSet {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        // By role name (broker-a before broker-a-s), not file name ('-' sorts before '.').
        let files = try listDirectory(trimmed).sorted { ($0.split(separator: ".").first ?? "") < ($1.split(separator: ".").first ?? "") }
        var nameServers: [ClusterRole] = []
        var brokers: [ClusterRole] = []
        for file in files where file.hasSuffix(".properties") || file.hasSuffix(".conf") {
            let name = String(file[..<file.lastIndex(of: ".")!])
            let kind: ClusterRole.Kind
            if name.hasPrefix("namesrv") { kind = .nameServer } else if name.hasPrefix("broker") { kind = .broker } else { continue }
            let properties: PropertiesFile
            do { properties = try PropertiesFile.load(trimmed + "/" + file) } catch { throw ClusterError(error.description) }
            let role = ClusterRole(kind: kind, name: name, properties: properties)
            if kind == .nameServer { nameServers.append(role) } else { brokers.append(role) }
        }
        guard !nameServers.isEmpty else { throw ClusterError("\(trimmed): no NameServer file (namesrv*.properties)") }
        guard !brokers.isEmpty else { throw ClusterError("\(trimmed): no broker file (broker*.properties)") }
        let set = ConfSet(directory: trimmed, name: String(trimmed.split(separator: "/").last ?? "cluster"),
                          nameServers: nameServers, brokers: brokers)
        try set.checkPortClashes()
        return set
    }

    /// Two roles of the set binding one port would fail at start-up; say so before anything starts.
    func checkPortClashes() throws(ClusterError) {
        var owners: [Int: (ClusterRole, ClusterRole.BoundPort)] = [:]
        for role in roles {
            for bound in role.ports {
                if let (other, otherPort) = owners[bound.port] {
                    throw ClusterError("\(role.file):\(bound.line): \(bound.key): port \(bound.port) is also bound by \(other.name) "
                                       + "(\(other.file):\(otherPort.line): \(otherPort.key)); nothing started")
                }
                owners[bound.port] = (role, bound)
            }
        }
    }

    static func listDirectory(_ path: String) throws(ClusterError) -> [String] {
        guard let directory = opendir(path) else {
            throw ClusterError("\(path): not a conf set directory (\(String(cString: strerror(errno))))")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names
    }

    /// The NameServer addresses, as clients dial them.
    public var namesrvAddr: String { nameServers.map(\.address).joined(separator: ";") }
}
