#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// The next queue offset of every (topic, queue): an open-addressing table over the topic's bytes, read and moved
/// on by every put under the commit log's append lock.
///
/// `take` runs only under that lock (in a put's `assign`), so puts see log order; `set` and `remove` take the same
/// lock (`CommitLog.withAppendsHeld`), so the table needs no lock of its own and a put pays for one probe: a hash
/// of the topic a word at a time, a compare of the slot's key. (It was a `Dictionary` of arrays behind a mutex of
/// its own, hashed with SipHash: about 70 ns of a 440 ns put in `bench store --flush async --producers 1`.)
final class QueueOffsetTable: @unchecked Sendable {
    private struct Slot {
        var hash: UInt64
        /// The topic's bytes, owned by the slot (nil: the slot is empty).
        var topic: UnsafeMutableRawBufferPointer?
        var queueID: Int32
        var next: Int64
    }

    private let commitLog: CommitLog
    /// Mixed into every hash, chosen per table, so topic names cannot be picked to collide (a client may name
    /// topics, and colliding keys would turn each put's probe into a walk).
    private let seed = UInt64.random(in: .min ... .max)
    private var slots: UnsafeMutableBufferPointer<Slot>
    private var used = 0

    init(commitLog: CommitLog) {
        self.commitLog = commitLog
        slots = QueueOffsetTable.makeSlots(64)
    }

    deinit {
        for slot in slots { slot.topic?.deallocate() }
        slots.deallocate()
    }

    private static func makeSlots(_ count: Int) -> UnsafeMutableBufferPointer<Slot> {
        let slots = UnsafeMutableBufferPointer<Slot>.allocate(capacity: count)
        slots.initialize(repeating: Slot(hash: 0, topic: nil, queueID: 0, next: 0))
        return slots
    }

    /// Under the append lock: returns the next offset of the queue and moves it on by `count`. Allocates only for
    /// a queue's first message.
    @inline(__always)
    func take(topic: UnsafeRawBufferPointer, queueID: Int32, count: Int) -> Int64 {
        let at = slotIndex(topic: topic, queueID: queueID, hash: QueueOffsetTable.hash(topic, queueID, seed: seed))
        let next = slots[at].next
        slots[at].next = next + Int64(count)
        return next
    }

    /// Sets the next offset of each queue given (after dispatch caught up, or a truncation).
    func set(_ values: [(topic: String, queueID: Int32, next: Int64)]) {
        _ = try? commitLog.withAppendsHeld { () throws(StoreError) in
            for value in values {
                var topic = value.topic
                topic.withUTF8 { bytes in
                    let raw = UnsafeRawBufferPointer(bytes)
                    // The index first: making the slot may move the table to a larger one.
                    let at = slotIndex(topic: raw, queueID: value.queueID, hash: QueueOffsetTable.hash(raw, value.queueID, seed: seed))
                    slots[at].next = value.next
                }
            }
        }
    }

    /// Forgets every queue of `topic` (its queue offsets start from 0 again).
    func remove(topic: String) {
        _ = try? commitLog.withAppendsHeld { () throws(StoreError) in
            var text = topic
            text.withUTF8 { bytes in rebuild(capacity: slots.count, dropping: UnsafeRawBufferPointer(bytes)) }
        }
    }

    /// The slot of the queue, made (with offset 0) when it has none.
    @inline(__always)
    private func slotIndex(topic: UnsafeRawBufferPointer, queueID: Int32, hash: UInt64) -> Int {
        let mask = slots.count - 1
        var at = Int(truncatingIfNeeded: hash) & mask
        while let stored = slots[at].topic {
            if slots[at].hash == hash && slots[at].queueID == queueID && QueueOffsetTable.same(stored, topic) { return at }
            at = (at + 1) & mask
        }
        return insert(topic: topic, queueID: queueID, hash: hash)
    }

    @inline(never)
    private func insert(topic: UnsafeRawBufferPointer, queueID: Int32, hash: UInt64) -> Int {
        if (used + 1) * 2 > slots.count { rebuild(capacity: slots.count * 2, dropping: nil) }
        let owned = UnsafeMutableRawBufferPointer.allocate(byteCount: max(topic.count, 1), alignment: 8)
        if let base = topic.baseAddress, topic.count > 0 { owned.baseAddress!.copyMemory(from: base, byteCount: topic.count) }
        let mask = slots.count - 1
        var at = Int(truncatingIfNeeded: hash) & mask
        while slots[at].topic != nil { at = (at + 1) & mask }
        slots[at] = Slot(hash: hash, topic: UnsafeMutableRawBufferPointer(rebasing: owned[0..<topic.count]), queueID: queueID, next: 0)
        used += 1
        return at
    }

    /// Moves the entries to a table of `capacity` slots, leaving out (and freeing) those of topic `dropping`.
    private func rebuild(capacity: Int, dropping: UnsafeRawBufferPointer?) {
        let old = slots
        slots = QueueOffsetTable.makeSlots(capacity)
        used = 0
        for slot in old {
            guard let topic = slot.topic else { continue }
            if let dropping, QueueOffsetTable.same(topic, dropping) {
                topic.deallocate()
                continue
            }
            var at = Int(truncatingIfNeeded: slot.hash) & (capacity - 1)
            while slots[at].topic != nil { at = (at + 1) & (capacity - 1) }
            slots[at] = slot
            used += 1
        }
        old.deallocate()
    }

    @inline(__always)
    private static func same(_ stored: UnsafeMutableRawBufferPointer, _ topic: UnsafeRawBufferPointer) -> Bool {
        stored.count == topic.count && (topic.count == 0 || memcmp(stored.baseAddress!, topic.baseAddress!, topic.count) == 0)
    }

    /// A hash of the topic eight bytes at a time (a multiply and a shift each), of the queue id and of `seed`.
    @inline(__always)
    static func hash(_ topic: UnsafeRawBufferPointer, _ queueID: Int32, seed: UInt64) -> UInt64 {
        @inline(__always) func mix(_ value: UInt64) -> UInt64 {
            let product = value &* 0xFF51_AFD7_ED55_8CCD
            return product ^ (product >> 29)
        }
        var hash = mix(seed ^ (UInt64(UInt32(bitPattern: queueID)) | UInt64(topic.count) << 32))
        var at = 0
        while at + 8 <= topic.count {
            hash = mix(hash ^ topic.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            at += 8
        }
        if at < topic.count {
            var tail: UInt64 = 0
            for index in at..<topic.count { tail |= UInt64(topic[index]) << UInt64(8 * (index - at)) }
            hash = mix(hash ^ tail)
        }
        return hash
    }
}
