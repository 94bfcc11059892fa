#if canImport(Glibc)
import Glibc
#endif

/// What recovery found when the log opened.
public struct RecoveryReport: Sendable, Equatable {
    /// True when the `abort` file was present: the last run did not shut down cleanly.
    public var abnormal = false
    /// The file the scan started at.
    public var startOffset: UInt64 = 0
    /// End of the last valid record: the log's new end.
    public var endOffset: UInt64 = 0
    /// Records checked.
    public var recordsScanned = 0
    /// Bytes after the end that held something other than zeros (a torn or corrupt tail).
    public var truncatedTail = false
    /// The first invalid record, when the scan stopped at one.
    public var corruption: String?
    /// The last segment was shorter than `mappedFileSizeCommitLog` on disk (extended with zeros at load).
    public var shortFile: MappedFileQueue.ShortFile?
}

extension CommitLog {
    var abortPath: String { settings.storePathRootDir + "/abort" }

    func takeLock() throws(StoreError) {
        let path = settings.storePathRootDir + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(.io, "\(path): cannot open", cause: SyscallError(name: "open", errno: errno)) }
        guard Self.lockSoon(fd) else {
            Glibc.close(fd)
            throw StoreError(.locked, "\(settings.storePathRootDir) is in use by another process (lock file held)")
        }
        lockFD = fd
    }

    /// Takes the exclusive lock, trying for up to about 300 ms: a child this process is starting (`system`,
    /// `posix_spawn`) shares the lock's open file until its exec closes it, so a store closed and reopened at that
    /// moment finds the lock briefly held. A store really in use by another process is still refused.
    static func lockSoon(_ fd: Int32) -> Bool {
        for attempt in 0...30 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            guard errno == EWOULDBLOCK, attempt < 30 else { return false }
            usleep(10_000)
        }
        return false
    }

    func markRunning() throws(StoreError) {
        let fd = open(abortPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(.io, "\(abortPath): cannot create", cause: SyscallError(name: "open", errno: errno)) }
        var text = Array("\(getpid())".utf8)
        _ = write(fd, &text, text.count)
        Glibc.close(fd)
        do { try fsyncDirectory(settings.storePathRootDir) } catch {
            throw StoreError(.io, "\(settings.storePathRootDir): cannot sync directory", cause: error)
        }
    }

    /// Scans from a safe starting file to the last valid record, truncates everything after it (files
    /// beyond are deleted; the rest of its file is zeroed) and sets every position to that end.
    func recover() throws(StoreError) {
        var report = RecoveryReport()
        report.abnormal = fileExists(abortPath)
        report.shortFile = queue.shortFile
        if let short = report.shortFile {
            shared.log("commitlog recovery: \(short.path) held \(short.survivingBytes) bytes, shorter than mappedFileSizeCommitLog \(settings.mappedFileSizeCommitLog) (cut short by a crash or a copy); extended with zeros, the log ends at the last record wholly within those bytes")
        }
        let files = queue.all
        guard !files.isEmpty else {
            recoveryReport = report
            return
        }
        let startIndex = report.abnormal ? abnormalStartIndex(files) : max(0, files.count - 3)
        report.startOffset = files[startIndex].fileFromOffset
        var end = report.startOffset
        var lastTimestamp: Int64 = 0
        for file in files[startIndex...] {
            end = file.fileFromOffset
            guard scan(file, end: &end, lastTimestamp: &lastTimestamp, report: &report) else { break }
        }
        report.endOffset = end
        try truncate(at: end, report: &report)
        recoveryReport = report
        if let corruption = report.corruption { shared.log("commitlog recovery: \(corruption)") }
        shared.log("commitlog recovery (\(report.abnormal ? "abnormal" : "normal")): scanned \(report.recordsScanned) records from \(report.startOffset), end \(end)")
        shared.wroteAtomic.store(end, ordering: .releasing)
        shared.committedAtomic.store(end, ordering: .releasing)
        shared.flushedAtomic.store(end, ordering: .releasing)
        shared.lastStoreTimestamp.store(lastTimestamp, ordering: .relaxed)
        appendLock.withLock { state in
            state.wrote = end
            state.file = queue.file(containing: end)
        }
    }

    /// Checks the records of `file` from its start, moving `end` past each valid one. True when the file
    /// ends with a blank record (the scan goes on in the next file); false at the end of the data, at the
    /// first invalid record, or at a file without a blank at its end (nothing after it can be trusted).
    private func scan(_ file: MappedFile, end: inout UInt64, lastTimestamp: inout Int64,
                      report: inout RecoveryReport) -> Bool {
        // A segment cut short: a record reaching past the bytes that survived was never whole on disk.
        var trusted = file.fileSize
        if let short = report.shortFile, short.fileFromOffset == file.fileFromOffset { trusted = short.survivingBytes }
        var position = 0
        while position < file.fileSize {
            let bytes = file.bytes(from: position, to: max(position, min(trusted, file.fileSize)))
            switch RecordDecoder.check(bytes, expectedPhysicalOffset: Int64(file.fileFromOffset) + Int64(position),
                                       checkCRC: settings.checkCRCOnRecover) {
            case .message(let header):
                position += header.totalSize
                end = file.fileFromOffset + UInt64(position)
                lastTimestamp = header.storeTimestamp
                report.recordsScanned += 1
            case .blank:
                end = file.fileEndOffset
                return true
            case .endOfData:
                return false
            case .corrupt(let field, let detail):
                // Only a blank's 8 bytes are written; the rest of the file was zeros from its creation.
                if position + MessageRecord.endOfFileMinBlankBytes <= trusted,
                   case .blank = RecordDecoder.check(file.bytes(from: position, to: file.fileSize), checkCRC: false) {
                    end = file.fileEndOffset
                    return true
                }
                report.corruption = "\(file.path) @\(position): bad \(field): \(detail); truncating the log to \(end)"
                return false
            }
        }
        return false
    }

    /// Abnormal recovery starts at the newest file whose first record is valid and no newer than the
    /// checkpoint's bound (everything before it was flushed); else at the first file.
    private func abnormalStartIndex(_ files: [MappedFile]) -> Int {
        let bound = checkpoint.minTimestamp
        guard bound > 0 else { return 0 }
        for index in files.indices.reversed() {
            let file = files[index]
            if case .message(let header) = RecordDecoder.check(file.bytes(from: 0, to: file.fileSize),
                                                                expectedPhysicalOffset: Int64(file.fileFromOffset)),
               header.storeTimestamp > 0, header.storeTimestamp <= bound {
                return index
            }
        }
        return 0
    }

    /// Cuts the log at `end`: later files are deleted, the rest of the file holding `end` is zeroed (so no
    /// stale record can ever be read as live), and what stays is made durable. `zeroing` forces the zeroing
    /// (a live truncation cuts through valid records).
    func truncate(at end: UInt64, report: inout RecoveryReport, zeroing: Bool = false) throws(StoreError) {
        let fileSize = UInt64(settings.mappedFileSizeCommitLog)
        let keepUpTo = end - end % fileSize  // the file holding `end` stays
        for file in queue.removeFiles(startingAtOrAfter: keepUpTo + fileSize) {
            report.truncatedTail = report.truncatedTail || !isZero(file.bytes(from: 0, to: min(file.fileSize, 4096)))
            file.unlinkFromDisk()
        }
        guard let file = queue.file(containing: end) else { return }
        let position = Int(end - file.fileFromOffset)
        let tailProbe = file.bytes(from: position, to: min(file.fileSize, position + 4096))
        do {
            if zeroing || report.abnormal || report.corruption != nil || !isZero(tailProbe) {
                report.truncatedTail = report.truncatedTail || !isZero(tailProbe)
                try file.zeroTail(from: position, io: settings.fileIO)
            }
            // After a crash the page cache may still hold unflushed bytes: make them durable now.
            if report.abnormal {
                for kept in queue.all.suffix(2) { try settings.fileIO.fdatasync(kept.fd) }
            }
            try fsyncDirectory(settings.storePathCommitLog)
        } catch {
            throw StoreError(.io, "\(file.path): cannot truncate at \(position)", cause: error)
        }
    }

    private func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.allSatisfy { $0 == 0 }
    }
}
