import NIOCore

/// A forward-only JSON scanner over bytes: enough to walk the remoting header without building values.
struct JSONText {
    let raw: UnsafeRawBufferPointer
    var at = 0

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    mutating func skipSpace() {
        while at < raw.count, raw[at] == 0x20 || raw[at] == 0x0A || raw[at] == 0x0D || raw[at] == 0x09 { at += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        guard at < raw.count, raw[at] == byte else { return false }
        at += 1
        return true
    }

    var atEnd: Bool { mutating get { skipSpace(); return at >= raw.count } }

    /// A string token's contents (between the quotes), or nil (position unchanged) when none is here.
    mutating func string() -> (start: Int, count: Int, escaped: Bool)? {
        skipSpace()
        guard at < raw.count, raw[at] == UInt8(ascii: "\"") else { return nil }
        let start = at + 1
        var index = start
        var escaped = false
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\"") {
                at = index + 1
                return (start, index - start, escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
            } else {
                index += 1
            }
        }
        return nil  // unterminated
    }

    /// Skips any value (string, number, literal, object, array); false when the text is malformed or nests
    /// deeper than `depthMax` (untrusted input must not exhaust the stack).
    static let depthMax = 64

    mutating func skipValue(depth: Int = 0) -> Bool {
        guard depth < Self.depthMax else { return false }
        skipSpace()
        guard at < raw.count else { return false }
        switch raw[at] {
        case UInt8(ascii: "\""):
            return string() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = raw[at] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            at += 1
            if consume(close) { return true }
            while true {
                if close == UInt8(ascii: "}") {
                    guard string() != nil, consume(UInt8(ascii: ":")) else { return false }
                }
                guard skipValue(depth: depth + 1) else { return false }
                if consume(UInt8(ascii: ",")) { continue }
                return consume(close)
            }
        default:
            let start = at
            scan: while at < raw.count {
                switch raw[at] {
                case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: ":"),
                     UInt8(ascii: "\""), 0x20, 0x09, 0x0A, 0x0D: break scan
                default: at += 1
                }
            }
            return at > start
        }
    }

    /// Undoes JSON string escapes from `source` into `target` (at least `source.count` bytes); returns the length.
    static func unescape(_ source: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer) -> Int {
        var read = 0
        var written = 0
        func put(_ byte: UInt8) { target[written] = byte; written += 1 }
        func hex(_ at: Int) -> UInt32? {
            guard at + 4 <= source.count else { return nil }
            var value: UInt32 = 0
            for index in at..<(at + 4) {
                let byte = source[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
        while read < source.count {
            let byte = source[read]
            guard byte == UInt8(ascii: "\\"), read + 1 < source.count else {
                put(byte)
                read += 1
                continue
            }
            let kind = source[read + 1]
            read += 2
            switch kind {
            case UInt8(ascii: "n"): put(0x0A)
            case UInt8(ascii: "t"): put(0x09)
            case UInt8(ascii: "r"): put(0x0D)
            case UInt8(ascii: "b"): put(0x08)
            case UInt8(ascii: "f"): put(0x0C)
            case UInt8(ascii: "u"):
                guard var scalar = hex(read) else { put(UInt8(ascii: "?")); continue }
                read += 4
                if scalar >= 0xD800, scalar < 0xDC00, read + 6 <= source.count, source[read] == UInt8(ascii: "\\"),
                   source[read + 1] == UInt8(ascii: "u"), let low = hex(read + 2), low >= 0xDC00, low < 0xE000 {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    read += 6
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                for unit in UTF8.encode(unicode)! { put(unit) }
            default: put(kind)  // \" \\ \/ and anything else: the character itself
            }
        }
        return written
    }
}

extension JSONText {
    /// Writes `text` as a quoted JSON string.
    static func writeQuoted(_ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { writeQuoted(UnsafeRawBufferPointer($0), into: &buffer) }
    }

    /// Writes `bytes` (UTF-8) as a quoted JSON string, escaping quotes, backslashes and control characters.
    static func writeQuoted(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            switch byte {
            case UInt8(ascii: "\""): buffer.writeString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeString("\\\\")
            case 0x0A: buffer.writeString("\\n")
            case 0x09: buffer.writeString("\\t")
            case 0x0D: buffer.writeString("\\r")
            default:
                func hex(_ digit: UInt8) -> UInt8 { digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10 }
                buffer.writeString("\\u00")
                buffer.writeInteger(hex(byte >> 4))
                buffer.writeInteger(hex(byte & 0xF))
            }
            runStart = index + 1
        }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart...]))
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
