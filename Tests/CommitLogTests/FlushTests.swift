#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Synchronization
import Testing
import TestSupport

/// A FileIO whose fdatasync/msync can be slowed down or made to fail, and which counts syncs.
final class ScriptedIO: @unchecked Sendable {
    let syncs = Atomic<Int>(0)
    let syncDelayMicros = Atomic<Int>(0)
    let failSyncs = Atomic<Bool>(false)
    /// The next sync takes half a second and then fails with EIO.
    let slowFailNext = Atomic<Bool>(false)
    /// pwrite fails with EIO (the io_uring ring's own writes under ASYNC_FLUSH).
    let failWrites = Atomic<Bool>(false)
    /// fallocate calls still allowed before ENOSPC (negative: unlimited).
    let fallocatesLeft = Atomic<Int>(-1)
    /// The next sync fails with EIO at once.
    let failNextSync = Atomic<Bool>(false)
    /// pwrite waits (5 s at most) while this holds; `writesHeld` counts the writes that waited.
    let holdWrites = Atomic<Bool>(false)
    let writesHeld = Atomic<Int>(0)

    var fileIO: FileIO {
        let system = FileIO.system
        return FileIO(
            fallocate: { [self] (fd, offset, length) throws(SyscallError) in
                if fallocatesLeft.load(ordering: .relaxed) == 0 { throw SyscallError(name: "fallocate", errno: ENOSPC) }
                if fallocatesLeft.load(ordering: .relaxed) > 0 { fallocatesLeft.wrappingSubtract(1, ordering: .relaxed) }
                try system.fallocate(fd, offset, length)
            },
            pwrite: { [self] (fd, bytes, offset) throws(SyscallError) in
                if failWrites.load(ordering: .relaxed) { throw SyscallError(name: "pwrite", errno: EIO) }
                if holdWrites.load(ordering: .relaxed) {
                    writesHeld.wrappingAdd(1, ordering: .relaxed)
                    let deadline = monotonicNanos() + 5_000_000_000
                    while holdWrites.load(ordering: .relaxed) && monotonicNanos() < deadline { usleep(1_000) }
                }
                try system.pwrite(fd, bytes, offset)
            },
            fdatasync: { [self] fd throws(SyscallError) in try sync { () throws(SyscallError) in try system.fdatasync(fd) } },
            msync: { [self] (address, length) throws(SyscallError) in try sync { () throws(SyscallError) in try system.msync(address, length) } },
            ringResult: { [self] operation, result in
                guard operation == .fdatasync else { return result }
                do throws(SyscallError) {
                    try sync { () throws(SyscallError) in }
                } catch {
                    return -error.errno
                }
                return result
            })
    }

    /// Waits (at most 5 s) until a sync beyond the first `before` started; true if one did.
    func waitForSync(after before: Int) -> Bool {
        let deadline = monotonicNanos() + 5_000_000_000
        while syncs.load(ordering: .relaxed) == before && monotonicNanos() < deadline { usleep(1_000) }
        return syncs.load(ordering: .relaxed) != before
    }

    private func sync(_ body: () throws(SyscallError) -> Void) throws(SyscallError) {
        syncs.wrappingAdd(1, ordering: .relaxed)
        let delay = syncDelayMicros.load(ordering: .relaxed)
        if delay > 0 { usleep(UInt32(delay)) }
        if slowFailNext.load(ordering: .relaxed) && slowFailNext.exchange(false, ordering: .relaxed) {
            usleep(500_000)
            throw SyscallError(name: "fdatasync", errno: EIO)
        }
        if failSyncs.load(ordering: .relaxed) { throw SyscallError(name: "fdatasync", errno: EIO) }
        if failNextSync.load(ordering: .relaxed) && failNextSync.exchange(false, ordering: .relaxed) {
            throw SyscallError(name: "fdatasync", errno: EIO)
        }
        try body()
    }
}

/// SYNC_FLUSH group commit: every put is answered once, many share one sync, and failures are final.
@Suite(.serialized) struct FlushTests {
    @Test(arguments: [SyncWritePath.writeBuffer, .mapping], [FlushMethod.msync, .fdatasync])
    func groupCommitSharesOneSyncAmongManyPuts(path: SyncWritePath, method: FlushMethod) throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        scripted.syncDelayMicros.store(2_000, ordering: .relaxed)  // a slow disk makes puts pile up
        var settings = testSettings(dir.path, path: path, fileSize: 1 << 20)
        settings.flushMethod = method
        settings.fileIO = scripted.fileIO
        let log = try CommitLog(settings: settings)
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        let before = scripted.syncs.load(ordering: .relaxed)
        let threads = (0..<16).map { producer in
            StoreThread(name: "p\(producer)") {
                for sequence in 0..<20 {
                    _ = try? log.put(TestMessage(size: 100, seed: sequence), token: UInt64(producer * 100 + sequence))
                }
            }
        }
        for thread in threads { thread.join() }
        let statuses = recorder.wait(forCount: 320)
        log.close()
        #expect(statuses.count == 320)
        #expect(statuses.values.allSatisfy { $0 == [.putOK] }, "every put answered exactly once, with PUT_OK")
        let syncs = scripted.syncs.load(ordering: .relaxed) - before
        #expect(syncs < 160, "320 puts took \(syncs) syncs: group commit should share them")
        #expect(log.flushedOffset == log.wroteOffset)
    }

    @Test(arguments: SyncWritePath.allCases)
    func syncPutIsDurableWhenAnswered(path: SyncWritePath) throws {
        let dir = TemporaryDirectory()
        let log = try CommitLog(settings: testSettings(dir.path, path: path))
        defer { log.close() }
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        var results: [AppendResult] = []
        for token in 0..<50 {
            results.append(try log.put(TestMessage(size: 300, seed: token), token: UInt64(token)))
            let statuses = recorder.wait(forCount: token + 1)
            #expect(statuses[UInt64(token)] == [.putOK])
            #expect(log.flushedOffset >= results.last!.nextOffset, "answered before the flush covered it")
        }
    }

    /// mmap: a round starts beside one still syncing; if that one fails, the later one fails too, though its own sync
    /// succeeded (a write-back error is reported to one fdatasync of the file only), and nothing it wrote is flushed.
    @Test(arguments: [SyncWritePath.writeBuffer, .mapping])
    func aRoundAfterAFailedOneFailsThoughItsOwnSyncSucceeded(path: SyncWritePath) throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        let (log, recorder) = try twoLaneLog(dir.path, scripted, path: path)
        defer { log.close() }
        let before = scripted.syncs.load(ordering: .relaxed)
        scripted.slowFailNext.store(true, ordering: .relaxed)
        _ = try log.put(TestMessage(size: 100, seed: 1), token: 1)
        #expect(scripted.waitForSync(after: before))
        let second = try log.put(TestMessage(size: 100, seed: 2), token: 2)  // while the first round's sync sleeps
        expectBothRoundsFailed(log, recorder, scripted, syncsBefore: before, second: second)
    }

    /// io_uring with two lanes: a round starts while the one before it is still in flight (its write held until the
    /// next put waits), and the first round's FDATASYNC fails: the second fails too, though its own sync succeeded,
    /// and nothing it wrote is flushed. Rounds are decided in the order they started, whatever order the kernel
    /// completes their syncs in (the scripted result is the oldest round's).
    @Test func ringRoundAfterAFailedOneFailsThoughItsOwnSyncSucceeded() throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        let (log, recorder) = try twoLaneLog(dir.path, scripted, path: .ioUring)
        defer { log.close() }
        let before = scripted.syncs.load(ordering: .relaxed)
        scripted.holdWrites.store(true, ordering: .relaxed)
        _ = try log.put(TestMessage(size: 100, seed: 1), token: 1)
        let deadline = monotonicNanos() + 5_000_000_000
        while scripted.writesHeld.load(ordering: .relaxed) == 0 && monotonicNanos() < deadline { usleep(1_000) }
        #expect(scripted.writesHeld.load(ordering: .relaxed) == 1, "the first round writes")
        let second = try log.put(TestMessage(size: 100, seed: 2), token: 2)  // waits while the first round writes
        scripted.failNextSync.store(true, ordering: .relaxed)
        scripted.holdWrites.store(false, ordering: .relaxed)
        expectBothRoundsFailed(log, recorder, scripted, syncsBefore: before, second: second)
    }

    /// A log with two group-commit lanes on `path`, its io scripted by `scripted` (on io_uring without the pre-writer:
    /// only the ring writes and syncs), and the recorder of its answers; its first put (token 0) is answered.
    private func twoLaneLog(_ directory: String, _ scripted: ScriptedIO, path: SyncWritePath) throws -> (CommitLog, DurabilityRecorder) {
        var settings = testSettings(directory, path: path)
        settings.fileIO = scripted.fileIO
        settings.groupCommitLanes = 2
        if path == .ioUring { settings.preWriteNewFiles = false }
        let log = try CommitLog(settings: settings)
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        _ = try log.put(TestMessage(size: 100, seed: 0), token: 0)
        #expect(recorder.wait(forCount: 1)[0] == [.putOK])
        return (log, recorder)
    }

    /// Puts 1 and 2 ran in two rounds side by side (two syncs since `syncsBefore`), the first round failed, and so did
    /// the second, nothing of which is flushed.
    private func expectBothRoundsFailed(_ log: CommitLog, _ recorder: DurabilityRecorder, _ scripted: ScriptedIO,
                                        syncsBefore: Int, second: AppendResult) {
        let statuses = recorder.wait(forCount: 3)
        #expect(scripted.syncs.load(ordering: .relaxed) - syncsBefore == 2, "the second round synced beside the first")
        #expect(statuses[1] == [.flushFailed])
        #expect(statuses[2] == [.flushFailed], "answered PUT_OK after the round before it failed")
        #expect(log.flushedOffset < second.nextOffset)
    }

    /// The linger (1 s here) never holds a lone sender: alone from the start (a population of 1), and right after
    /// a round answered 8 puts outstanding (its population), when only this sender comes back: the wait ends after a
    /// slice in which nothing came. A linger that waited out its bound would take a second a put.
    @Test(arguments: SyncWritePath.allCases)
    func lingerDoesNotHoldALoneSender(path: SyncWritePath) throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        var settings = testSettings(dir.path, path: path)
        settings.fileIO = scripted.fileIO
        settings.groupCommitLingerMicros = 1_000_000
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        var token: UInt64 = 0
        func putAlone(_ phase: String) throws {
            let began = monotonicNanos()
            _ = try log.put(TestMessage(size: 100, seed: Int(token)), token: token)
            token += 1
            #expect(recorder.wait(forCount: Int(token))[token - 1] == [.putOK])
            let millis = (monotonicNanos() - began) / 1_000_000
            #expect(millis < 500, "a lone put \(phase) took \(millis) ms: the linger held it")
        }
        for _ in 0..<5 { try putAlone("from the start") }
        // One round syncs slowly while seven more puts wait: eight outstanding when it answers.
        scripted.syncDelayMicros.store(200_000, ordering: .relaxed)
        let before = scripted.syncs.load(ordering: .relaxed)
        _ = try log.put(TestMessage(size: 100, seed: 0), token: token)
        #expect(scripted.waitForSync(after: before))
        for next in token + 1...token + 7 { _ = try log.put(TestMessage(size: 100, seed: Int(next)), token: next) }
        scripted.syncDelayMicros.store(0, ordering: .relaxed)
        token += 8
        #expect(recorder.wait(forCount: Int(token)).values.allSatisfy { $0 == [.putOK] })
        for _ in 0..<5 { try putAlone("after a round of 8") }
    }

    @Test func slowFlushAnswersFlushDiskTimeoutAfterSyncFlushTimeout() throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        var settings = testSettings(dir.path, flush: .syncFlush)
        settings.fileIO = scripted.fileIO
        settings.syncFlushTimeoutMillis = 100
        let log = try CommitLog(settings: settings)
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        _ = try log.put(TestMessage(size: 100, seed: 0), token: 0)  // the first file exists and is flushed
        _ = recorder.wait(forCount: 1)
        scripted.syncDelayMicros.store(600_000, ordering: .relaxed)
        let began = monotonicNanos()
        let result = try log.put(TestMessage(size: 100, seed: 1), token: 1)
        let statuses = recorder.wait(forCount: 2)
        let waitedMillis = (monotonicNanos() - began) / 1_000_000
        #expect(statuses[1] == [.flushDiskTimeout])
        #expect(waitedMillis >= 90 && waitedMillis < 550, "answered after \(waitedMillis) ms")
        // The message is stored all the same, and no put is answered twice.
        #expect(Array(try log.record(at: result.physicalOffset).body) == TestMessage(size: 100, seed: 1).body)
        scripted.syncDelayMicros.store(0, ordering: .relaxed)
        log.close()
        #expect(recorder.wait(forCount: 3, seconds: 0.3)[1] == [.flushDiskTimeout])
    }

    @Test(arguments: SyncWritePath.allCases)
    func failedSyncFailsWaitersRefusesAppendsAndKeepsReads(path: SyncWritePath) throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        var settings = testSettings(dir.path, path: path)
        settings.fileIO = scripted.fileIO
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        let kept = try log.put(TestMessage(size: 100, seed: 1), token: 1)
        #expect(recorder.wait(forCount: 1)[1] == [.putOK])
        scripted.failSyncs.store(true, ordering: .relaxed)
        _ = try log.put(TestMessage(size: 100, seed: 2), token: 2)
        let statuses = recorder.wait(forCount: 2)
        #expect(statuses[2] == [.flushFailed])
        #expect(log.isFlushFailed)
        do {
            _ = try log.append(TestMessage(size: 100, seed: 3))
            Issue.record("append after a failed fdatasync succeeded")
        } catch {
            #expect(error.code == .flushFailed)
        }
        #expect(Array(try log.record(at: kept.physicalOffset).body) == TestMessage(size: 100, seed: 1).body)
    }

    @Test func fullWaiterRingFailsFastAndStoresNothing() throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        var settings = testSettings(dir.path, flush: .syncFlush)
        settings.fileIO = scripted.fileIO
        settings.pendingWaitersMax = 4
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let recorder = DurabilityRecorder()
        log.onDurable { recorder.record($0, $1) }
        _ = try log.put(TestMessage(size: 10, seed: 0), token: 0)
        _ = recorder.wait(forCount: 1)
        scripted.syncDelayMicros.store(300_000, ordering: .relaxed)  // the flusher now holds waiters a while
        var accepted = 0
        var refused = 0
        for token in 1...8 {
            let wrote = log.wroteOffset
            do {
                _ = try log.put(TestMessage(size: 10, seed: token), token: UInt64(token))
                accepted += 1
            } catch {
                #expect(error.code == .waitersFull)
                #expect(log.wroteOffset == wrote, "a refused put stored nothing")
                refused += 1
            }
        }
        #expect(accepted == 4)
        #expect(refused == 4)
        scripted.syncDelayMicros.store(0, ordering: .relaxed)
        let statuses = recorder.wait(forCount: 5)
        #expect(statuses.count == 5)
    }

    /// io_uring under ASYNC_FLUSH: the ring thread writes coalesced bytes with pwrite; a failed write is final
    /// like a failed sync (the page cache may hold part of it), and what was written before stays readable.
    @Test func failedAsyncRingWriteRefusesAppendsAndKeepsReads() throws {
        let dir = TemporaryDirectory()
        let scripted = ScriptedIO()
        var settings = testSettings(dir.path, io: .ioUring, flush: .asyncFlush)
        settings.fileIO = scripted.fileIO
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        let kept = try log.append(TestMessage(size: 100, seed: 1))
        let deadline = monotonicNanos() + 5_000_000_000
        while log.committedOffset < kept.nextOffset && monotonicNanos() < deadline { usleep(1_000) }
        #expect(log.committedOffset >= kept.nextOffset, "written after commitIntervalCommitLog")
        scripted.failWrites.store(true, ordering: .relaxed)
        _ = try log.append(TestMessage(size: 100, seed: 2))
        while !log.isFlushFailed && monotonicNanos() < deadline { usleep(1_000) }
        #expect(log.isFlushFailed)
        #expect(log.committedOffset == kept.nextOffset, "a failed write commits nothing")
        do {
            _ = try log.append(TestMessage(size: 100, seed: 3))
            Issue.record("append after a failed write succeeded")
        } catch {
            #expect(error.code == .flushFailed)
        }
        #expect(Array(try log.record(at: kept.physicalOffset).body) == TestMessage(size: 100, seed: 1).body)
    }

    @Test(arguments: IOPath.allCases)
    func asyncFlushMakesEverythingDurableWithinTheThoroughInterval(io: IOPath) throws {
        let dir = TemporaryDirectory()
        var settings = testSettings(dir.path, io: io, flush: .asyncFlush)
        settings.flushCommitLogThoroughIntervalMillis = 300  // a tail under flushCommitLogLeastPages waits for it
        let log = try CommitLog(settings: settings)
        defer { log.close() }
        for seed in 0..<100 { _ = try log.append(TestMessage(size: 1000, seed: seed)) }
        let deadline = monotonicNanos() + 5_000_000_000
        while log.flushedOffset < log.wroteOffset && monotonicNanos() < deadline { usleep(5_000) }
        #expect(log.flushedOffset == log.wroteOffset)
    }
}
