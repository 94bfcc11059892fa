#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// A hand-driven TCP peer on 127.0.0.1 for fake slaves and fake masters: blocking calls, each with a
/// deadline. Closes its descriptor when released.
final class RawPeer {
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Connects to 127.0.0.1:`port`.
    static func connect(port: Int) -> RawPeer? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var target = loopback(port: port)
        let rc = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return RawPeer(fd: fd)
    }

    /// A listener on 127.0.0.1:`port` (0: one the system picks). - Returns: it and the port.
    static func listen(port: Int = 0) -> (RawPeer, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: port)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        Glibc.listen(fd, 8)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (RawPeer(fd: fd), Int(UInt16(bigEndian: bound.sin_port)))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// The next connection on a listener, within `seconds`.
    func accept(seconds: Double = 10) -> RawPeer? {
        guard wait(POLLIN, seconds: seconds) else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? RawPeer(fd: client) : nil
    }

    private func wait(_ events: Int32, seconds: Double) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
        return poll(&entry, 1, Int32(seconds * 1000)) > 0
    }

    func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends an 8-byte big-endian offset report.
    func report(_ offset: Int64) { write(bigEndianBytes(offset)) }

    /// Exactly `count` bytes within `seconds`, or nil (timeout or end of stream).
    func read(_ count: Int, seconds: Double = 10) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while done < count {
            let left = Double(deadline - min(deadline, monotonicNanos())) / 1e9
            guard left > 0, wait(POLLIN, seconds: left) else { return nil }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }

    /// True when the peer closed the connection (read returns 0 or fails) within `seconds`; bytes that
    /// arrive first are skipped.
    func closedByPeer(seconds: Double = 10) -> Bool {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        var sink = [UInt8](repeating: 0, count: 65_536)
        while true {
            let left = Double(deadline - min(deadline, monotonicNanos())) / 1e9
            guard left > 0, wait(POLLIN, seconds: left) else { return false }
            if sink.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) <= 0 { return true }
        }
    }
}

func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}
