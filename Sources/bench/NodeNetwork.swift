#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import IndexFile

/// Network namespaces for a local cluster whose nodes can be partitioned: each broker node in a namespace of its
/// own (`mqc<pid>n<i>`) with one veth link to a bridge (`mqc<pid>br`) in this namespace, where the NameServer and
/// the clients stay. Node i has 10.<a>.<b>.(10+i), the bridge .1. Isolating a node takes its link down (nobody
/// reaches it, it reaches nobody); healing brings it up. `teardown()` removes every namespace and link it made.
final class NodeNetwork {
    let prefix: String
    let subnet: String
    let nodes: Int
    private var created: [String] = []
    private var bridgeCreated = false
    static let ip = "/usr/sbin/ip"

    var bridge: String { prefix + "br" }
    var bridgeAddress: String { subnet + ".1" }
    func namespace(_ node: Int) -> String { "\(prefix)n\(node)" }
    func link(_ node: Int) -> String { "\(prefix)v\(node)" }
    func address(_ node: Int) -> String { "\(subnet).\(10 + node)" }

    /// Why namespaces cannot be used here (nil when they can): `ip` missing, not root, or `ip netns add` refused.
    static func unavailableReason() -> String? {
        guard access(ip, X_OK) == 0 else { return "\(ip) is not installed (iproute2)" }
        guard geteuid() == 0 else { return "network namespaces need root (this bench runs as uid \(geteuid()))" }
        let probe = "mqcprobe\(getpid())"
        guard runCommand([ip, "netns", "add", probe]) == 0 else { return "`ip netns add` failed (no CAP_SYS_ADMIN in this container?)" }
        runCommand([ip, "netns", "del", probe])
        return nil
    }

    /// Creates the bridge and `nodes` namespaces with their links; on any failure removes what it made and throws.
    init(nodes: Int) throws {
        let pid = Int(getpid())
        prefix = "mqc\(pid)"
        subnet = "10.\(200 + pid % 50).\(pid / 50 % 250)"
        self.nodes = nodes
        NodeNetwork.removeLeftovers()
        do {
            try run(["link", "add", bridge, "type", "bridge"])
            bridgeCreated = true
            try run(["addr", "add", bridgeAddress + "/24", "dev", bridge])
            try run(["link", "set", bridge, "up"])
            for node in 0..<nodes { try add(node) }
        } catch {
            teardown()
            throw error
        }
    }

    private func add(_ node: Int) throws {
        let space = namespace(node)
        try run(["netns", "add", space])
        created.append(space)
        try run(["link", "add", link(node), "type", "veth", "peer", "name", "eth0", "netns", space])
        try run(["link", "set", link(node), "master", bridge])
        try run(["link", "set", link(node), "up"])
        try run(["-n", space, "link", "set", "lo", "up"])
        try run(["-n", space, "addr", "add", address(node) + "/24", "dev", "eth0"])
        try run(["-n", space, "link", "set", "eth0", "up"])
        try run(["-n", space, "route", "add", "default", "via", bridgeAddress])
    }

    func isolate(_ node: Int) throws { try run(["link", "set", link(node), "down"]) }
    func heal(_ node: Int) throws { try run(["link", "set", link(node), "up"]) }

    /// Removes the namespaces (their veth ends go with them) and the bridge. Idempotent.
    func teardown() {
        for space in created { runCommand([Self.ip, "netns", "del", space]) }
        created.removeAll()
        if bridgeCreated { runCommand([Self.ip, "link", "del", bridge]) }
        bridgeCreated = false
    }

    /// The namespaces this bench left behind (names `mqc<pid>n<i>` whose bench no longer runs): a bench killed
    /// with SIGKILL cannot tear down, so the next one does.
    static func removeLeftovers() {
        guard let listing = readPipe([ip, "netns", "list"]) else { return }
        for line in listing.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("mqc"), let n = name.dropFirst(3).split(separator: "n").first, let pid = Int32(n),
                  name.dropFirst(3).contains("n"), kill(pid, 0) != 0 else { continue }
            runCommand([ip, "netns", "del", name])
            runCommand([ip, "link", "del", "mqc\(pid)br"])
        }
    }

    private func run(_ arguments: [String]) throws {
        let status = runCommand([Self.ip] + arguments)
        guard status == 0 else {
            throw ValidationErrorText("ip \(arguments.joined(separator: " ")) failed (status \(status.map(String.init) ?? "none"))")
        }
    }
}
