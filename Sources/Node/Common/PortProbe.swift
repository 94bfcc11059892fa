#if canImport(Glibc)
import Glibc
#endif

/// Whether a TCP port can be listened on, asked before a role does anything slow (a broker's recovery) so a port in
/// use is reported at once, by number and key, instead of after minutes of work. The probe binds and closes at
/// once; another process may still take the port in between, which the real bind then reports.
public enum PortProbe {
    /// How long a port in use is asked again before it counts as taken: a socket of a process that just stopped (a
    /// restart) or of a connection closing may hold it for a moment.
    public static let retryMillisMax = 2_000

    /// The first of `ports` (key, port, and the IPv4 address the role binds, 0.0.0.0 when nil or not an address)
    /// that cannot be bound, with the reason; nil when all can. Port 0 (any free port) is skipped. A port in use is
    /// asked again every 100 ms for up to `retryMillisMax`.
    public static func firstUnavailable(_ ports: [(key: String, port: Int, host: String?)]) -> (key: String, port: Int, reason: String)? {
        for (key, port, host) in ports where port > 0 {
            var failure = bindFailure(host: host ?? "0.0.0.0", port: port)
            for _ in 0..<(retryMillisMax / 100) {
                guard let reason = failure, reason.code == EADDRINUSE else { break }
                usleep(100_000)
                failure = bindFailure(host: host ?? "0.0.0.0", port: port)
            }
            if let failure { return (key, port, failure.text) }
        }
        return nil
    }

    /// The sentence a role prints when a port is unavailable (`port 10911 (listenPort) is already in use ...`).
    public static func refusal(_ failure: (key: String, port: Int, reason: String), file: String?) -> String {
        let fix = "stop the process that holds it, or set \(failure.key) in " + (file ?? "a config file (-c)")
        return "cannot listen on port \(failure.port) (\(failure.key)): \(failure.reason); \(fix)"
    }

    /// Why binding `host`:`port` fails (`address already in use`), or nil. SO_REUSEADDR as the servers set it, so
    /// a port left in TIME_WAIT by a previous run counts as free.
    static func bindFailure(host: String, port: Int) -> (code: Int32, text: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return (errno, String(cString: strerror(errno)).lowercased()) }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        if inet_pton(AF_INET, host, &address.sin_addr) != 1 { address.sin_addr.s_addr = INADDR_ANY }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let code = errno
        return bound == 0 ? nil : (code, String(cString: strerror(code)).lowercased())
    }
}
