#if canImport(Glibc)
import Glibc
#endif
import CommitLog

/// RocketMQ's property keys the store reads.
enum MessageConst {
    static let tags = "TAGS"
    static let keys = "KEYS"
    static let uniqueKey = "UNIQ_KEY"
    static let delayLevel = "DELAY"
    static let realTopic = "REAL_TOPIC"
    static let realQueueID = "REAL_QID"
}

/// The value of `key` in a RocketMQ properties string (`key 0x01 value 0x02 ...`), without copying.
public func propertyValue(_ properties: UnsafeRawBufferPointer, _ key: StaticString) -> UnsafeRawBufferPointer? {
    let keyBytes = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    var start = 0
    let count = properties.count
    while start < count {
        var separator = start
        while separator < count && properties[separator] != 1 { separator += 1 }
        var end = separator
        while end < count && properties[end] != 2 { end += 1 }
        if separator < count && separator - start == keyBytes.count
            && memcmpEqual(properties, start, keyBytes) {
            return UnsafeRawBufferPointer(rebasing: properties[(separator + 1)..<end])
        }
        start = end + 1
    }
    return nil
}

/// The properties dispatch reads (TAGS for the queue unit, KEYS and UNIQ_KEY for the index), found in one walk
/// that splits the string as `propertyValue` does (the first of a repeated key wins), separators found by memchr.
struct DispatchProperties {
    var tags: UnsafeRawBufferPointer?
    var keys: UnsafeRawBufferPointer?
    var uniqueKey: UnsafeRawBufferPointer?

    init(_ properties: UnsafeRawBufferPointer) {
        guard let base = properties.baseAddress else { return }
        let count = properties.count
        var start = 0
        while start < count {
            let separator = memchr(base + start, 1, count - start).map { UnsafeRawPointer($0) - base } ?? count
            let end = separator < count ? memchr(base + separator, 2, count - separator).map { UnsafeRawPointer($0) - base } ?? count : count
            if separator < count {
                let key = UnsafeRawBufferPointer(rebasing: properties[start..<separator])
                let value = UnsafeRawBufferPointer(rebasing: properties[(separator + 1)..<end])
                if tags == nil && Self.equal(key, "TAGS") { tags = value }
                else if keys == nil && Self.equal(key, "KEYS") { keys = value }
                else if uniqueKey == nil && Self.equal(key, "UNIQ_KEY") { uniqueKey = value }
            }
            start = end + 1
        }
    }

    @inline(__always)
    private static func equal(_ key: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        key.count == name.utf8CodeUnitCount && memcmp(key.baseAddress!, name.utf8Start, key.count) == 0
    }
}

@inline(__always)
private func memcmpEqual(_ haystack: UnsafeRawBufferPointer, _ at: Int, _ needle: UnsafeRawBufferPointer) -> Bool {
    for index in 0..<needle.count where haystack[at + index] != needle[index] { return false }
    return true
}

/// Java's `String.hashCode` (31 * h + c over UTF-16 code units, 32-bit wrapping). ASCII bytes are hashed
/// directly; other text goes through UTF-16 as Java sees it.
public func javaHashCode(_ utf8: UnsafeRawBufferPointer) -> Int32 {
    var hash: Int32 = 0
    for byte in utf8 {
        if byte >= 0x80 { return javaHashCode(String(decoding: utf8, as: UTF8.self)) }
        hash = 31 &* hash &+ Int32(byte)
    }
    return hash
}

public func javaHashCode(_ text: String) -> Int32 {
    var hash: Int32 = 0
    for unit in text.utf16 { hash = 31 &* hash &+ Int32(unit) }
    return hash
}

/// The consume-queue tags code of a message whose TAGS value is `tags`: its Java hash, or 0 without tags.
func tagsCode(tags: UnsafeRawBufferPointer?) -> Int64 {
    guard let tags, tags.count > 0 else { return 0 }
    return Int64(javaHashCode(tags))
}
