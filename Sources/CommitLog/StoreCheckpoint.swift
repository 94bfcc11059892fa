#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// `<root>/checkpoint`: a 4 KiB file with RocketMQ's fields at fixed offsets (big-endian longs):
///
/// ```
/// +0 physicMsgTimestamp | +8 logicsMsgTimestamp | +16 indexMsgTimestamp | +24 masterFlushedOffset | +32 confirmPhyOffset
/// ```
/// The values are hints for abnormal recovery (where to start scanning), written only after the data
/// they describe is durable, so a stale value only makes recovery start earlier.
public final class StoreCheckpoint: @unchecked Sendable {
    public static let fileSize = 4096
    public let path: String
    private let fd: Int32
    private let io: FileIO
    private struct Values { var physic: Int64 = 0, logics: Int64 = 0, index: Int64 = 0, masterFlushed: Int64 = 0, confirm: Int64 = 0 }
    private let values = Mutex(Values())

    public init(path: String, io: FileIO) throws(StoreError) {
        self.path = path
        self.io = io
        do { fd = try syscall("open") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) } } catch {
            throw StoreError(.io, "\(path): cannot open", cause: error)
        }
        var buffer = [UInt8](repeating: 0, count: 40)
        let n = buffer.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, 40, 0) }
        if n == 40 {
            buffer.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                values.withLock {
                    $0 = Values(physic: loadBigEndian(Int64.self, at: 0, in: base),
                                logics: loadBigEndian(Int64.self, at: 8, in: base),
                                index: loadBigEndian(Int64.self, at: 16, in: base),
                                masterFlushed: loadBigEndian(Int64.self, at: 24, in: base),
                                confirm: loadBigEndian(Int64.self, at: 32, in: base))
                }
            }
        } else {
            _ = ftruncate(fd, off_t(StoreCheckpoint.fileSize))
        }
    }

    deinit { close(fd) }

    public var physicMsgTimestamp: Int64 {
        get { values.withLock { $0.physic } }
        set { values.withLock { $0.physic = newValue } }
    }
    public var logicsMsgTimestamp: Int64 {
        get { values.withLock { $0.logics } }
        set { values.withLock { $0.logics = newValue } }
    }
    public var indexMsgTimestamp: Int64 {
        get { values.withLock { $0.index } }
        set { values.withLock { $0.index = newValue } }
    }
    public var confirmPhyOffset: Int64 {
        get { values.withLock { $0.confirm } }
        set { values.withLock { $0.confirm = newValue } }
    }

    /// RocketMQ's bound for abnormal recovery: min(physic, logics) - 3 s, or physic alone when no
    /// consume queue has recorded a time yet.
    public var minTimestamp: Int64 {
        values.withLock { v in
            let base = v.logics > 0 ? min(v.physic, v.logics) : v.physic
            return max(0, base - 3_000)
        }
    }

    /// Writes the values and makes them durable.
    public func flush() throws(StoreError) {
        var bytes: (Int64, Int64, Int64, Int64, Int64) = values.withLock { v in
            (v.physic.bigEndian, v.logics.bigEndian, v.index.bigEndian, v.masterFlushed.bigEndian, v.confirm.bigEndian)
        }
        do {
            try withUnsafeBytes(of: &bytes) { (raw) throws(SyscallError) in try io.pwrite(fd, raw, 0) }
            try io.fdatasync(fd)
        } catch {
            throw StoreError(error.isDiskFull ? .diskFull : .io, "\(path): cannot write checkpoint", cause: error)
        }
    }
}
