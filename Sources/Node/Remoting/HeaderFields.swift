import NIOCore

/// A command's `extFields` kept as the bytes they came in (or were written) in, read without building a
/// dictionary: a JSON object's text (`{"topic":"T",...}`) or the binary header's block of
/// `keyLength(2) key valueLength(4) value` entries. SEND and PULL read their fields from here, so decoding
/// them allocates nothing beyond the frame itself.
public struct HeaderFields: Sendable {
    public enum Format: Sendable { case json, binary }
    /// The object text or the entry block, exactly as on the wire.
    public let bytes: ByteBuffer
    public let format: Format

    public init(bytes: ByteBuffer, format: Format) {
        self.bytes = bytes
        self.format = format
    }

    /// One value: where it is in `bytes`, and whether it is a JSON string with escapes to undo.
    public struct Value: Sendable {
        @usableFromInline let bytes: ByteBuffer
        @usableFromInline let start: Int
        @usableFromInline let count: Int
        @usableFromInline let escaped: Bool

        /// The value as an integer (a JSON number, or a string holding one), nil if it is not one.
        public var int64: Int64? {
            withBytes { raw -> Int64? in
                guard !raw.isEmpty else { return nil }
                var index = 0
                var negative = false
                if raw[0] == UInt8(ascii: "-") || raw[0] == UInt8(ascii: "+") {
                    negative = raw[0] == UInt8(ascii: "-")
                    index = 1
                }
                guard index < raw.count else { return nil }
                var value: Int64 = 0
                while index < raw.count {
                    let digit = raw[index] &- UInt8(ascii: "0")
                    guard digit < 10 else { return nil }
                    let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflowSum) = negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
                    guard !overflowTimes, !overflowSum else { return nil }
                    value = sum
                    index += 1
                }
                return value
            }
        }

        public var int32: Int32? { int64.flatMap { Int32(exactly: $0) } }

        /// "true"/"1" (RocketMQ's boolean fields come as strings).
        public var bool: Bool { withBytes { raw in Self.equal(raw, "true") || Self.equal(raw, "1") } }

        /// The value as text (allocates for values longer than 15 bytes).
        public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

        /// The value's bytes (JSON escapes undone into stack space when there are any). Inlined, so that a caller in
        /// another module gets a version for its own result type rather than generic code that looks up type
        /// metadata on every call.
        @inlinable
        public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            guard !escaped else { return try withUnescapedBytes(body) }
            return try bytes.withUnsafeReadableBytes { all in try body(UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])) }
        }

        @usableFromInline
        func withUnescapedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try bytes.withUnsafeReadableBytes { all in
                let raw = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                return try withUnsafeTemporaryAllocation(byteCount: max(count, 1), alignment: 1) { scratch in
                    let length = JSONText.unescape(raw, into: scratch)
                    return try body(UnsafeRawBufferPointer(rebasing: scratch[0..<length]))
                }
            }
        }

        public static func equal(_ raw: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
            raw.elementsEqual(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
    }

    /// Where a value lies in `bytes`: plain numbers, copied without reference counting (a request's fields kept
    /// as locations hold one reference to the bytes for all of them, not one per field).
    public struct Location: Sendable {
        // A ByteBuffer's indices fit in 32 bits.
        let start: UInt32
        let count: UInt32
        let escaped: Bool
    }

    /// The value at `location` (one found in these fields by `forEachLocation`).
    public func value(at location: Location) -> Value {
        Value(bytes: bytes, start: Int(location.start), count: Int(location.count), escaped: location.escaped)
    }

    /// Calls `body` with each key (raw bytes) and its value, in wire order; stops when `body` returns false.
    /// Malformed input ends the walk early (the decoder validated the structure already).
    public func forEach(_ body: (UnsafeRawBufferPointer, Value) -> Bool) {
        forEachLocation { key, location in body(key, value(at: location)) }
    }

    /// `forEach` with each value's location instead of the value (no reference to the bytes taken per field).
    public func forEachLocation(_ body: (UnsafeRawBufferPointer, Location) -> Bool) {
        bytes.withUnsafeReadableBytes { raw in
            switch format {
            case .binary:
                var at = 0
                while at + 2 <= raw.count {
                    let keyLength = Int(UInt16(raw[at]) << 8 | UInt16(raw[at + 1]))
                    let keyStart = at + 2
                    guard keyStart + keyLength + 4 <= raw.count else { return }
                    let valueLengthAt = keyStart + keyLength
                    let valueLength = Int(UInt32(raw[valueLengthAt]) << 24 | UInt32(raw[valueLengthAt + 1]) << 16
                                          | UInt32(raw[valueLengthAt + 2]) << 8 | UInt32(raw[valueLengthAt + 3]))
                    let valueStart = valueLengthAt + 4
                    guard valueStart + valueLength <= raw.count else { return }
                    let key = UnsafeRawBufferPointer(rebasing: raw[keyStart..<(keyStart + keyLength)])
                    guard body(key, Location(start: UInt32(valueStart), count: UInt32(valueLength), escaped: false)) else { return }
                    at = valueStart + valueLength
                }
            case .json:
                var scanner = JSONText(raw)
                guard scanner.consume(UInt8(ascii: "{")) else { return }
                if scanner.consume(UInt8(ascii: "}")) { return }
                while true {
                    guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return }
                    scanner.skipSpace()
                    let valueAt = scanner.at
                    let value: Location
                    var isNull = false
                    if let text = scanner.string() {
                        value = Location(start: UInt32(text.start), count: UInt32(text.count), escaped: text.escaped)
                    } else {
                        guard scanner.skipValue() else { return }
                        value = Location(start: UInt32(valueAt), count: UInt32(scanner.at - valueAt), escaped: false)
                        // A JSON null (the literal, not the text "null") is no value: a missing field.
                        isNull = value.count == 4 && raw[valueAt] == UInt8(ascii: "n")
                    }
                    let keyBytes = UnsafeRawBufferPointer(rebasing: raw[key.start..<(key.start + key.count)])
                    if !isNull {
                        // A key with escapes is undone on the stack, as values are (field names rarely have any).
                        let goOn = key.escaped
                            ? withUnsafeTemporaryAllocation(byteCount: max(key.count, 1), alignment: 1) { scratch in
                                body(UnsafeRawBufferPointer(rebasing: scratch[0..<JSONText.unescape(keyBytes, into: scratch)]), value)
                            }
                            : body(keyBytes, value)
                        guard goOn else { return }
                    }
                    if scanner.consume(UInt8(ascii: ",")) { continue }
                    return
                }
            }
        }
    }

    /// The value of `key`, or nil. A key given more than once has its last value, as in `dictionary` and in
    /// Java's header map (and in the SEND and PULL decoders' single pass), so every reader of a request agrees.
    public subscript(_ key: StaticString) -> Value? {
        var found: Location?
        forEachLocation { name, location in
            if Value.equal(name, key) { found = location }
            return true
        }
        return found.map(value(at:))
    }

    /// The fields as a dictionary (allocates; for requests off the hot path).
    public var dictionary: [String: String] {
        var result: [String: String] = [:]
        forEach { key, value in
            result[String(decoding: key, as: UTF8.self)] = value.string
            return true
        }
        return result
    }

    /// Writes `table` in the binary entry layout, keys sorted; empty keys and values are left out (the binary
    /// form cannot carry them). Returns the bytes written.
    @discardableResult
    static func writeBinaryEntries(_ table: [String: String], into buffer: inout ByteBuffer) -> Int {
        var written = 0
        for key in table.keys.sorted() {
            let value = table[key]!
            guard !key.isEmpty, !value.isEmpty else { continue }
            written += buffer.writeInteger(Int16(key.utf8.count)) + buffer.writeString(key)
            written += buffer.writeInteger(Int32(value.utf8.count)) + buffer.writeString(value)
        }
        return written
    }

    /// A dictionary's fields in the binary layout (requests made with `extFields`, read like wire ones).
    public static func binary(_ table: [String: String]) -> HeaderFields {
        var writer = Writer()
        writeBinaryEntries(table, into: &writer.buffer)
        return writer.fields
    }

    /// Fields written in the binary layout, straight into a buffer (the client's hot path).
    public struct Writer {
        public var buffer: ByteBuffer

        public init(allocator: ByteBufferAllocator = ByteBufferAllocator(), capacity: Int = 256) {
            buffer = allocator.buffer(capacity: capacity)
        }

        /// A writer into `buffer`, emptied first (no allocation when nothing else holds it).
        public init(reusing buffer: consuming ByteBuffer) {
            self.buffer = consume buffer
            self.buffer.clear()
        }

        public mutating func append(_ key: StaticString, _ value: String) {
            var value = value
            value.withUTF8 { append(key, UnsafeRawBufferPointer($0)) }
        }

        /// One field as `keyLength(2) key valueLength(4) value`, written with one reservation of its whole size
        /// (a SEND's header has 12 fields: one buffer access each instead of four or five).
        public mutating func append(_ key: StaticString, _ value: UnsafeRawBufferPointer) {
            guard !value.isEmpty else { return }  // empty values do not survive the binary form
            let keyCount = key.utf8CodeUnitCount
            let size = 2 + keyCount + 4 + value.count
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
                let at = Self.storeKey(key, into: target)
                target.storeBytes(of: UInt32(value.count).bigEndian, toByteOffset: at, as: UInt32.self)
                UnsafeMutableRawBufferPointer(rebasing: target[(at + 4)...]).copyMemory(from: value)
                return size
            }
        }

        /// Inlined so that callers in other modules call the concrete `appendDecimal`, not generic code that looks
        /// up the integer type's conformances on every call.
        @inlinable
        public mutating func append(_ key: StaticString, _ value: some BinaryInteger) {
            appendDecimal(key, Int64(value))
        }

        public mutating func appendDecimal(_ key: StaticString, _ value: Int64) {
            let keyCount = key.utf8CodeUnitCount
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 + keyCount + 4 + Self.decimalDigitsMax) { target in
                let at = Self.storeKey(key, into: target)
                let digits = Self.storeDecimal(value, into: UnsafeMutableRawBufferPointer(rebasing: target[(at + 4)...]))
                target.storeBytes(of: UInt32(digits).bigEndian, toByteOffset: at, as: UInt32.self)
                return at + 4 + digits
            }
        }

        /// The key's length and bytes at the start of `target` (which has room for them); the offset after them.
        @inline(__always)
        public static func storeKey(_ key: StaticString, into target: UnsafeMutableRawBufferPointer) -> Int {
            let keyCount = key.utf8CodeUnitCount
            precondition(target.count >= 2 + keyCount, "header field reservation too small")
            target.storeBytes(of: UInt16(keyCount).bigEndian, toByteOffset: 0, as: UInt16.self)
            UnsafeMutableRawBufferPointer(rebasing: target[2..<(2 + keyCount)])
                .copyMemory(from: UnsafeRawBufferPointer(start: key.utf8Start, count: keyCount))
            return 2 + keyCount
        }

        /// An Int64 in decimal takes at most 20 characters (`-9223372036854775808`).
        public static let decimalDigitsMax = 20

        /// `value` in decimal at the start of `target` (at least `decimalDigitsMax` bytes); the bytes written.
        public static func storeDecimal(_ value: Int64, into target: UnsafeMutableRawBufferPointer) -> Int {
            precondition(target.count >= decimalDigitsMax, "decimal reservation too small")
            var magnitude = value.magnitude
            var digits = 0
            repeat {  // count first, then write from the last digit backwards: no temporary
                digits += 1
                magnitude /= 10
            } while magnitude > 0
            let count = digits + (value < 0 ? 1 : 0)
            if value < 0 { target[0] = UInt8(ascii: "-") }
            magnitude = value.magnitude
            var at = count
            repeat {
                at -= 1
                target[at] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            return count
        }

        public mutating func append(_ key: StaticString, _ value: Bool) {
            append(key, value ? "true" : "false")
        }

        public var fields: HeaderFields { HeaderFields(bytes: buffer, format: .binary) }
    }
}
