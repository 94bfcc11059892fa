import CommitLog

/// A map from (topic bytes, queue id) to a value that finds an existing entry without building a
/// `String` (so a put or a dispatch allocates nothing once its queue is known). Not synchronised:
/// the owner holds a lock around it.
struct QueueTable<Value: Sendable> {
    private struct Entry {
        var topic: String
        var queueID: Int32
        var value: Value
    }
    private var buckets: [UInt64: [Entry]] = [:]

    @inline(__always)
    static func hash(_ topic: UnsafeRawBufferPointer, _ queueID: Int32) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for byte in topic { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return (hash ^ UInt64(UInt32(bitPattern: queueID))) &* 0x0000_0100_0000_01B3
    }

    private static func same(_ text: String, _ bytes: UnsafeRawBufferPointer) -> Bool { utf8Equals(text, bytes) }

    /// Calls `body` with the value for the queue, creating it with `make` on first use.
    @inline(__always)
    mutating func withValue<R>(topic: UnsafeRawBufferPointer, queueID: Int32, make: () -> Value,
                               _ body: (inout Value) throws(StoreError) -> R) throws(StoreError) -> R {
        let key = QueueTable.hash(topic, queueID)
        if let index = buckets[key]?.firstIndex(where: { $0.queueID == queueID && QueueTable.same($0.topic, topic) }) {
            return try body(&buckets[key]![index].value)
        }
        buckets[key, default: []].append(Entry(topic: String(decoding: topic, as: UTF8.self), queueID: queueID, value: make()))
        return try body(&buckets[key]![buckets[key]!.count - 1].value)
    }

    func value(topic: String, queueID: Int32) -> Value? {
        var topic = topic
        return topic.withUTF8 { bytes in
            buckets[QueueTable.hash(UnsafeRawBufferPointer(bytes), queueID)]?
                .first { $0.queueID == queueID && QueueTable.same($0.topic, UnsafeRawBufferPointer(bytes)) }?.value
        }
    }

    mutating func set(topic: String, queueID: Int32, _ value: Value) {
        var text = topic
        text.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            _ = try? withValue(topic: raw, queueID: queueID, make: { value }) { (current) throws(StoreError) in current = value }
        }
    }

    mutating func remove(topic: String) {
        for key in Array(buckets.keys) {
            buckets[key]!.removeAll { $0.topic == topic }
            if buckets[key]!.isEmpty { buckets[key] = nil }
        }
    }

    var all: [(topic: String, queueID: Int32, value: Value)] {
        buckets.values.flatMap { $0.map { ($0.topic, $0.queueID, $0.value) } }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// True when `bytes` are exactly the UTF-8 of `text` (no String is built from the bytes).
@inline(__always)
func utf8Equals(_ text: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var text = text
    return text.withUTF8 { $0.count == bytes.count && ($0.count == 0 || memcmp($0.baseAddress!, bytes.baseAddress!, $0.count) == 0) }
}

extension QueueTable: @unchecked Sendable where Value: Sendable {}
