#if canImport(Glibc)
import Glibc
#endif
import CLiburing

/// The write arena (io_uring's, and the mmap path's write buffer under SYNC_FLUSH): `size` bytes of shared
/// memory mapped twice back to back, so a record that wraps around the end is still contiguous; io_uring
/// registers it with the ring as one fixed buffer.
/// Log byte `p` lives at `base + p % size`; appenders may run at most `size` bytes ahead of the ring.
final class IOArena: @unchecked Sendable {
    let size: Int
    let mask: UInt64
    let base: UnsafeMutableRawPointer
    private let memfd: Int32

    init(size: Int) throws(StoreError) {
        precondition(size.nonzeroBitCount == 1, "arena size must be a power of two")
        self.size = size
        mask = UInt64(size - 1)
        let fd = cliburing_memfd_create("commitlog-arena")
        guard fd >= 0 else { throw StoreError(.io, "write arena: memfd_create failed", cause: SyscallError(name: "memfd_create", errno: errno)) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            close(fd)
            throw StoreError(.io, "write arena: cannot size \(size) bytes", cause: SyscallError(name: "ftruncate", errno: errno))
        }
        guard let reserved = mmap(nil, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), reserved != MAP_FAILED else {
            close(fd)
            throw StoreError(.io, "write arena: cannot reserve address space", cause: SyscallError(name: "mmap", errno: errno))
        }
        for half in 0..<2 {
            let address = mmap(reserved + half * size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0)
            guard address == reserved + half * size else {
                munmap(reserved, 2 * size)
                close(fd)
                throw StoreError(.io, "write arena: double mapping failed", cause: SyscallError(name: "mmap", errno: errno))
            }
        }
        base = reserved
        memfd = fd
        populate()
    }

    /// Makes the arena's pages (and both mappings' page tables) now, at start: otherwise the appenders' first pass
    /// over it takes a fault that allocates and clears a page every 4 KiB (mmap + SYNC_FLUSH, 64 x 1 KiB, 300k
    /// messages: 0.24 us per message on the event loop). Where MADV_POPULATE_WRITE is missing (Linux < 5.14) each page
    /// of the first mapping is touched instead, and the second mapping's faults find the page there.
    private func populate() {
        let populateWrite: Int32 = 23  // MADV_POPULATE_WRITE (not imported by Glibc)
        guard madvise(base, 2 * size, populateWrite) != 0 else { return }
        let page = Int(getpagesize())
        for offset in stride(from: 0, to: size, by: page) { base.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self) }
    }

    deinit {
        munmap(base, 2 * size)
        close(memfd)
    }

    @inline(__always)
    func pointer(at position: UInt64) -> UnsafeMutableRawPointer { base + Int(position & mask) }
}

/// One io_uring instance with a single owner (the ring thread); `deinit` exits the queue once.
/// Operations carry a tag in `user_data`, never an object.
final class IORing {
    let ring: UnsafeMutablePointer<io_uring>
    /// True when the arena is registered and WRITE_FIXED can be used.
    private(set) var fixedBuffers = false

    static let writeTag: UInt64 = 1
    static let syncTag: UInt64 = 2
    /// The READ of the wake-up eventfd (`prepareWakeRead`).
    static let wakeTag: UInt64 = 3
    /// A SYNC_FLUSH round's FDATASYNC: `syncTag` with the round's lane above `laneShift`.
    static let laneShift: UInt64 = 8
    /// Where the wake-up READ puts the eventfd's counter (read by nobody).
    private let wakeCounter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)

    init(entries: Int) throws(StoreError) {
        ring = .allocate(capacity: 1)
        let rc = io_uring_queue_init(UInt32(entries), ring, 0)
        guard rc == 0 else {
            ring.deallocate()
            throw StoreError(.io, "io_uring_queue_init(\(entries)) failed: io_uring is unavailable; use ioPath=mmap",
                             cause: SyscallError(name: "io_uring_queue_init", errno: -rc))
        }
    }

    deinit {
        io_uring_queue_exit(ring)  // cancels a wake-up READ still armed before its buffer goes
        ring.deallocate()
        wakeCounter.deallocate()
    }

    /// Registers the arena (both halves) as fixed buffer 0; without it, plain WRITE is used.
    func register(_ arena: IOArena) {
        var vector = iovec(iov_base: arena.base, iov_len: 2 * arena.size)
        fixedBuffers = io_uring_register_buffers(ring, &vector, 1) == 0
    }

    /// Queues a WRITE of `count` bytes from `source` to `fd` at `offset`, linked to an FDATASYNC when
    /// `sync`. False when the submission queue lacks room.
    func prepareWrite(fd: Int32, source: UnsafeRawPointer, count: Int, offset: UInt64, sync: Bool) -> Bool {
        guard io_uring_sq_space_left(ring) >= (sync ? 2 : 1), let write = io_uring_get_sqe(ring) else { return false }
        if fixedBuffers {
            io_uring_prep_write_fixed(write, fd, source, UInt32(count), offset, 0)
        } else {
            io_uring_prep_write(write, fd, source, UInt32(count), offset)
        }
        io_uring_sqe_set_data64(write, IORing.writeTag)
        if sync {
            cliburing_sqe_set_link(write)
            prepareSync(fd: fd)
        }
        return true
    }

    @discardableResult
    func prepareSync(fd: Int32, tag: UInt64 = IORing.syncTag) -> Bool {
        guard let sync = io_uring_get_sqe(ring) else { return false }
        io_uring_prep_fsync(sync, fd, cliburing_fsync_datasync())
        io_uring_sqe_set_data64(sync, tag)
        return true
    }

    /// Queues a READ of the (blocking) eventfd `fd`: it completes, with `wakeTag`, once an appender writes the
    /// eventfd. io_uring polls the eventfd for it (no io-wq worker), so the ring thread waiting for completions
    /// also wakes for new waiters. False when the submission queue lacks room.
    func prepareWakeRead(fd: Int32) -> Bool {
        guard let read = io_uring_get_sqe(ring) else { return false }
        io_uring_prep_read(read, fd, wakeCounter, 8, 0)
        io_uring_sqe_set_data64(read, IORing.wakeTag)
        return true
    }

    func submit() throws(StoreError) {
        let rc = io_uring_submit(ring)
        guard rc >= 0 else { throw StoreError(.io, "io_uring_submit failed", cause: SyscallError(name: "io_uring_submit", errno: -rc)) }
    }

    /// Waits up to `timeoutNanos` for one completion; returns (tag, result) or nil on timeout.
    func waitCompletion(timeoutNanos: UInt64) -> (tag: UInt64, result: Int32)? {
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        var timeout = __kernel_timespec(tv_sec: Int64(timeoutNanos / 1_000_000_000), tv_nsec: Int64(timeoutNanos % 1_000_000_000))
        let rc = io_uring_wait_cqe_timeout(ring, &cqe, &timeout)
        guard rc == 0, let completion = cqe else { return nil }
        let value = (completion.pointee.user_data, completion.pointee.res)
        io_uring_cqe_seen(ring, completion)
        return value
    }
}
