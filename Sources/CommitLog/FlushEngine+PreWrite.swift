#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The live pre-writer (SYNC_FLUSH, `CommitLogSettings.preWritesLiveFile`, where the file is written from an arena:
/// see `FlushEngine.preWritesLiveFile`): keeps the zeros of the file being
/// written written out and synced up to `livePreWriteAheadBytes` ahead of the writer, when that file was not
/// pre-written before use (a log's first file, the last file after a restart, a file taken before its pre-write
/// ended). On ext4 an fdatasync over fallocated (unwritten) extents converts them and, without a journal, writes
/// the extent and inode buffers synchronously: two more IOs in every group commit. Here they happen once per
/// chunk, off the group commit (`bench store`: 266k msgs/s of ideal group commit on a pre-written file, 160k on a
/// fallocated one). Broker, io_uring, 64 x 1 KiB, 600k messages, 7 alternating pairs on a shared 2-core machine:
/// this thread costs 0.50-0.53 us per message and the io-wq worker's WRITE + FDATASYNC 0.7-1.8 us less.
///
/// Zeros never land on bytes the log may write, whatever the io path: every writer of the file (an appender into the
/// mapping, or the ring writing the arena out) writes only bytes an appender reserved first, and an appender stores
/// `reservedEnd` before it reads `zeroFillClaim` (`announceMappedWrite`); this thread takes the claim (shared with
/// the pre-faulter) before it reads `reservedEnd`, and writes a chunk only when it starts `margin` past that end.
/// Both sides are sequentially consistent, so either this thread skips the chunk, or the appender waits for the
/// pwrite to end. The claim covers the pwrite only: the fdatasync after it (the extent conversion) holds nothing.
///
/// It syncs through its own descriptor of the file: an fdatasync error is reported once per open file, so the
/// log's own descriptor still sees an error the pre-writer's sync met, and the group commit fails as it should.
extension FlushEngine {
    /// The file the pre-writer works on, with its own descriptor.
    private struct LiveTarget {
        var file: MappedFile
        var fd: Int32
        /// A pwrite or fdatasync failed: the file is left as it is (appends convert its extents as before).
        var failed = false
        /// Opened with O_DIRECT (see `openLiveTarget`).
        var direct: Bool
    }

    /// Opens `file` for the pre-writer: with O_DIRECT where the file system takes it, so the zeros cost no page
    /// cache copy and write-back (a quarter of the CPU of buffered writes here); the pages are then read back in
    /// ahead (POSIX_FADV_WILLNEED), or the writer's first partial write into each would read it synchronously.
    private func openLiveTarget(_ file: MappedFile) -> LiveTarget? {
        let oDirect: Int32 = 0o40000  // O_DIRECT on Linux x86-64 and arm64 (not imported by Glibc)
        let direct = open(file.path, O_RDWR | O_CLOEXEC | oDirect)
        if direct >= 0 { return LiveTarget(file: file, fd: direct, direct: true) }
        let fd = open(file.path, O_RDWR | O_CLOEXEC)
        return fd >= 0 ? LiveTarget(file: file, fd: fd, direct: false) : nil
    }

    func runLivePreWrite() {
        let ahead = UInt64(log.settings.livePreWriteAheadBytes)
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: MappedFile.preWriteChunk, alignment: 4096)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var target: LiveTarget?
        defer {
            if let target { close(target.fd) }
            zeros.deallocate()
        }
        while !stopping.load(ordering: .acquiring) {
            let wrote = log.wroteAtomic.load(ordering: .acquiring)
            if let file = log.queue.file(containing: wrote), file.preWrittenBytes < file.fileSize {
                if target?.file !== file {
                    if let target { close(target.fd) }
                    target = openLiveTarget(file)
                }
                if target != nil && !target!.failed {
                    let end = min(file.fileEndOffset, wrote + ahead)
                    if !preWrite(target!, upTo: end, zeros: UnsafeRawBufferPointer(zeros)) {
                        target!.failed = true
                    }
                }
            }
            // Polled: at SYNC_FLUSH rates the writer moves a few MiB of the window between two rounds, and an
            // append pays nothing to wake this thread.
            preWriteWake.withLock {
                if !stopping.load(ordering: .relaxed) { preWriteWake.wait(untilNanos: monotonicNanos() + Self.preWritePollNanos) }
            }
        }
    }

    static let preWritePollNanos: UInt64 = 50_000_000

    /// The distance kept between the end appenders reserved and the chunk being written: an appender reaching a
    /// claimed chunk waits for its pwrite, which it does only when this thread is preempted that long.
    var preWriteMargin: UInt64 { min(4 << 20, UInt64(log.settings.livePreWriteAheadBytes) / 2) }

    /// Writes and syncs zeros over the chunks of `file` from its pre-written end (or `margin` past the reserved
    /// end) up to `end` (a global offset), chunk by chunk; false when a pwrite or fdatasync failed.
    private func preWrite(_ target: LiveTarget, upTo end: UInt64, zeros: UnsafeRawBufferPointer) -> Bool {
        let file = target.file, fd = target.fd
        let chunk = UInt64(zeros.count)
        let start = file.fileFromOffset
        let margin = preWriteMargin
        var at = start + UInt64(max(file.preWrittenBytes, file.liveZerosRange.upperBound))
        while at < end && !stopping.load(ordering: .relaxed) {
            takeZeroFillClaim(at)
            let reserved = reservedEnd.load(ordering: .sequentiallyConsistent)
            guard reserved + margin <= at else {
                zeroFillClaim.store(.max, ordering: .sequentiallyConsistent)
                // The writer is (nearly) here: go on past it, on a chunk boundary of the file.
                at = start + (reserved + margin - start + chunk - 1) / chunk * chunk
                continue
            }
            let count = Int(min(chunk - (at - start) % chunk, file.fileEndOffset - at))
            let written = (try? log.settings.fileIO.pwrite(fd, UnsafeRawBufferPointer(rebasing: zeros[0..<count]), Int(at - start))) != nil
            zeroFillClaim.store(.max, ordering: .sequentiallyConsistent)
            guard written, fdatasync(fd) == 0 else { return false }
            if target.direct { _ = posix_fadvise(fd, off_t(at - start), off_t(count), POSIX_FADV_WILLNEED) }
            file.noteLiveZeros(from: Int(at - start), to: Int(at - start) + count)
            log.livePreWrittenBytes.wrappingAdd(count, ordering: .relaxed)
            at += UInt64(count)
        }
        return true
    }
}

extension MappedFile {
    /// The file positions the live pre-writer wrote zeros over and synced, one range (empty: none). Packed into
    /// `liveZeros` as two 32-bit page numbers, so it reads as one value (a file of up to 16 TiB).
    var liveZerosRange: Range<Int> {
        let packed = liveZeros.load(ordering: .acquiring)
        let page = Int(getpagesize())
        let from = Int(packed >> 32) * page, to = min(fileSize, Int(packed & 0xFFFF_FFFF) * page)
        return from < to ? from..<to : 0..<0
    }

    /// Records zeros written over `[from, to)`: the range grows when it starts at its end, else starts anew there.
    func noteLiveZeros(from: Int, to: Int) {
        let page = Int(getpagesize())
        let current = liveZerosRange
        let first = !current.isEmpty && current.upperBound >= from ? current.lowerBound : from
        let lowPage = UInt64((first + page - 1) / page), highPage = UInt64((to + page - 1) / page)
        liveZeros.store(lowPage << 32 | highPage, ordering: .releasing)
    }
}

extension CommitLog {
    /// Bytes of zeros the live pre-writer wrote and synced ahead of the writer since the log opened.
    public var livePreWrittenBytes: Int { shared.livePreWrittenBytes.load(ordering: .relaxed) }

    /// The global offsets of the file holding `offset` that the live pre-writer wrote out (empty: none).
    public func livePreWrittenRange(inFileHolding offset: UInt64) -> Range<UInt64> {
        guard let file = queue.file(containing: offset) else { return offset..<offset }
        let range = file.liveZerosRange
        return file.fileFromOffset + UInt64(range.lowerBound)..<file.fileFromOffset + UInt64(range.upperBound)
    }
}
