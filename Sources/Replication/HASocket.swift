#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// The HA stream's sockets: blocking TCP, one owner thread per direction, every syscall through the
/// store's policy (`syscall`: retry EINTR, trap on EBADF/EFAULT, throw the rest). A descriptor is closed
/// only after every thread that used it was joined, so EBADF really is a programming error here.
enum HASocket {
    /// A listening socket on `host:port` (port 0: any free one). - Returns: the descriptor and the port.
    static func listen(host: String, port: Int) throws(StoreError) -> (fd: Int32, port: Int) {
        let address = try resolve(host: host, port: port, passive: true)
        let fd: Int32
        do { fd = try syscall("socket") { socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) } } catch {
            throw StoreError(.io, "HA listener \(host):\(port): cannot create a socket", cause: error)
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            _ = try address.withSockaddr { (pointer, length) throws(SyscallError) in try syscall("bind") { bind(fd, pointer, length) } }
            _ = try syscall("listen") { Glibc.listen(fd, 16) }
        } catch {
            Glibc.close(fd)
            throw StoreError(.io, "HA listener \(host):\(port): cannot listen", cause: error)
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, SocketAddress(bound).port)
    }

    /// Accepts one connection. - Returns: the descriptor (close-on-exec, TCP_NODELAY) and the peer's address.
    static func accept(_ listener: Int32) throws(SyscallError) -> (fd: Int32, remote: String) {
        var peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = try syscall("accept") {
            withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
            }
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        setNoDelay(fd)
        return (fd, SocketAddress(peer).text)
    }

    /// A new stream socket for `address` (not connected yet), so the caller can register it for a
    /// `shutdown` from another thread before the connect may block.
    static func makeSocket(for address: SocketAddress) throws(SyscallError) -> Int32 {
        try syscall("socket") { socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// Connects `fd` to `address` within `timeoutMillis`, then makes it blocking with TCP_NODELAY.
    static func connect(_ fd: Int32, to address: SocketAddress, timeoutMillis: Int) throws(SyscallError) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { throw SyscallError(name: "connect", errno: errno) }
            let events = try poll(fd, events: Int16(POLLOUT), timeoutMillis: timeoutMillis)
            guard events != 0 else { throw SyscallError(name: "connect", errno: ETIMEDOUT) }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
            if failure != 0 { throw SyscallError(name: "connect", errno: failure) }
        }
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        setNoDelay(fd)
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY */, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits up to `timeoutMillis` for `events`. - Returns: the events that happened (0: timed out).
    static func poll(_ fd: Int32, events: Int16, timeoutMillis: Int) throws(SyscallError) -> Int16 {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let ready = try syscall("poll") { Glibc.poll(&entry, 1, Int32(clamping: max(0, timeoutMillis))) }
        return ready == 0 ? 0 : entry.revents
    }

    /// Reads what is there (at least one byte, or 0 at the end of the stream).
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> Int {
        try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Sends every byte of `iovecs[0..<count]` (continuing after short writes), without SIGPIPE when the
    /// peer is gone. The vector is consumed: its entries are advanced as bytes go out.
    static func sendAll(_ fd: Int32, _ iovecs: UnsafeMutablePointer<iovec>, count: Int) throws(SyscallError) {
        var first = 0
        while first < count {
            var message = msghdr()
            message.msg_iov = iovecs + first
            message.msg_iovlen = count - first
            var sent = try syscall("sendmsg") { sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
            while first < count && sent >= iovecs[first].iov_len {
                sent -= iovecs[first].iov_len
                first += 1
            }
            if first < count && sent > 0 {
                iovecs[first].iov_base += sent
                iovecs[first].iov_len -= sent
            }
        }
    }

    /// Sends one 8-byte offset report.
    static func sendReport(_ fd: Int32, _ offset: UInt64) throws(SyscallError) {
        var report: UInt64 = 0
        try withUnsafeMutableBytes(of: &report) { (bytes) throws(SyscallError) in
            HAProtocol.encodeReport(offset, into: bytes.baseAddress!)
            var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
            try sendAll(fd, &vector, count: 1)
        }
    }

    /// The first address `host:port` resolves to (`"[v6]:port"` for IPv6 literals).
    static func resolve(host: String, port: Int, passive: Bool = false) throws(StoreError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw StoreError(.io, "cannot resolve \(host):\(port): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        return SocketAddress(storage)
    }

    /// Splits `"host:port"` or `"[v6]:port"`. - Returns: nil when there is no valid port.
    static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (1...65_535).contains(port) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}

/// An IPv4 or IPv6 socket address held by value.
struct SocketAddress {
    var storage: sockaddr_storage

    init(_ storage: sockaddr_storage) { self.storage = storage }

    var family: Int32 { Int32(storage.ss_family) }
    var length: socklen_t {
        socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    func withSockaddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var copy = storage
        let length = self.length
        return try withUnsafePointer(to: &copy) { (pointer) throws(E) -> R in
            try body(UnsafeRawPointer(pointer).assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    var port: Int {
        var copy = storage
        return withUnsafeBytes(of: &copy) { raw in
            family == AF_INET6
                ? Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
                : Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    /// `a.b.c.d:port` or `[v6]:port`.
    var text: String {
        var copy = storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let v6 = family == AF_INET6
        withUnsafeBytes(of: &copy) { raw in
            if v6 {
                var address = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
            } else {
                var address = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
            }
        }
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return v6 ? "[\(host)]:\(port)" : "\(host):\(port)"

    }
}
