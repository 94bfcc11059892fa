import NIOCore

/// The one JSON model of the roles: every remoting body, every config file and the NameServer's data
/// versions are read and written through it (the header has its own zero-copy scanner, `JSONText`).
///
/// Reading accepts what fastjson writes and RocketMQ's peers and files therefore contain: object keys that
/// are bare integers (`{0:250,1:250}`) and object keys that are objects (`{{"topic":"T","queueId":0}:{...}}`,
/// kept as their JSON text). Input is untrusted: nesting deeper than `depthMax` is refused before it can
/// exhaust the stack, and every error names the byte where it was found.
public enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    /// An object whose keys are written as they are (fastjson's integer and object keys), not quoted.
    case bareKeyObject([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case integer(Int64)
    case bool(Bool)
    case null

    /// Deeper nesting is refused (RocketMQ's bodies nest at most 5 levels).
    public static let depthMax = JSONText.depthMax

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)), let (.bareKeyObject(a), .bareKeyObject(b)),
             let (.object(a), .bareKeyObject(b)), let (.bareKeyObject(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    // MARK: Reading values

    public subscript(key: String) -> JSONValue? { members?.first { $0.0 == key }?.1 }

    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value): return value.isFinite && value.magnitude < 9.2e18 ? Int64(value.rounded()) : nil
        case .string(let text): return Int64(text)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        case .string(let text): return Double(text)
        default: return nil
        }
    }
    public var string: String? { if case .string(let text) = self { return text }; return nil }
    /// A boolean, or a string holding "true"/"false" (RocketMQ sends both).
    public var bool: Bool? {
        switch self {
        case .bool(let value): return value
        case .string(let text): return text == "true" ? true : text == "false" ? false : nil
        default: return nil
        }
    }
    public var array: [JSONValue]? { if case .array(let items) = self { return items }; return nil }
    public var members: [(String, JSONValue)]? {
        switch self {
        case .object(let members), .bareKeyObject(let members): return members
        default: return nil
        }
    }

    // MARK: Parsing

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(ParseError) in try parse(UnsafeRawBufferPointer(bytes)) } }.get()
    }

    /// A body's JSON (a missing body reads as an empty object).
    public static func parse(_ buffer: ByteBuffer?) throws(ParseError) -> JSONValue {
        guard let buffer, buffer.readableBytes > 0 else { return .object([]) }
        return try buffer.withUnsafeReadableBytes { bytes in Result { () throws(ParseError) in try parse(bytes) } }.get()
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> JSONValue {
        var parser = JSONParser(raw: bytes)
        let value = try parser.value(depth: 0)
        parser.text.skipSpace()
        guard parser.text.at == bytes.count else { throw ParseError(offset: parser.text.at, reason: "trailing characters") }
        return value
    }

    // MARK: Writing

    /// Compact text (remoting bodies): no spaces, keys in the order given.
    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .object(let members), .bareKeyObject(let members):
            let quoted = if case .object = self { true } else { false }
            buffer.writeInteger(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                if quoted { JSONText.writeQuoted(key, into: &buffer) } else { buffer.writeString(key) }
                buffer.writeInteger(UInt8(ascii: ":"))
                value.write(into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        case .array(let items):
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                item.write(into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        default:
            writeScalar(into: &buffer)
        }
    }

    /// Compact text as a buffer (a remoting body).
    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return buffer
    }

    /// Compact text as a string.
    public var compactText: String { String(buffer: encoded) }

    /// Pretty text with tabs, as fastjson writes RocketMQ's config files (keys in the order given).
    public func rendered() -> String {
        var buffer = ByteBuffer()
        writePretty(into: &buffer, indent: 0)
        return String(buffer: buffer)
    }

    private func writePretty(into buffer: inout ByteBuffer, indent: Int) {
        func newline(_ level: Int) {
            buffer.writeInteger(UInt8(ascii: "\n"))
            buffer.writeRepeatingByte(UInt8(ascii: "\t"), count: level)
        }
        switch self {
        case .object(let members), .bareKeyObject(let members):
            guard !members.isEmpty else { buffer.writeString("{}"); return }
            let quoted = if case .object = self { true } else { false }
            buffer.writeInteger(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                newline(indent + 1)
                if quoted { JSONText.writeQuoted(key, into: &buffer) } else { buffer.writeString(key) }
                buffer.writeInteger(UInt8(ascii: ":"))
                value.writePretty(into: &buffer, indent: indent + 1)
            }
            newline(indent)
            buffer.writeInteger(UInt8(ascii: "}"))
        case .array(let items):
            guard !items.isEmpty else { buffer.writeString("[]"); return }
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                newline(indent + 1)
                item.writePretty(into: &buffer, indent: indent + 1)
            }
            newline(indent)
            buffer.writeInteger(UInt8(ascii: "]"))
        default:
            writeScalar(into: &buffer)
        }
    }

    private func writeScalar(into buffer: inout ByteBuffer) {
        switch self {
        case .string(let text): JSONText.writeQuoted(text, into: &buffer)
        case .number(let value): buffer.writeString(value.isFinite ? String(value) : "null")
        case .integer(let value): buffer.writeString(String(value))
        case .bool(let value): buffer.writeString(value ? "true" : "false")
        case .null: buffer.writeString("null")
        case .object, .bareKeyObject, .array: preconditionFailure("not a scalar")
        }
    }
}

/// A JSON string literal (quotes and escapes), for text such as log lines.
public func jsonString(_ text: String) -> String {
    var buffer = ByteBuffer()
    JSONText.writeQuoted(text, into: &buffer)
    return String(buffer: buffer)
}

/// Builds `JSONValue`s over the header scanner's tokens, bounded by `JSONValue.depthMax`.
private struct JSONParser {
    var text: JSONText

    init(raw: UnsafeRawBufferPointer) { text = JSONText(raw) }

    func fail(_ reason: String) -> JSONValue.ParseError { JSONValue.ParseError(offset: text.at, reason: reason) }

    mutating func value(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard depth < JSONValue.depthMax else { throw fail("nested deeper than \(JSONValue.depthMax) levels") }
        text.skipSpace()
        guard text.at < text.raw.count else { throw fail("unexpected end") }
        switch text.raw[text.at] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        default: return try scalar()
        }
    }

    mutating func string() throws(JSONValue.ParseError) -> String {
        guard let token = text.string() else { throw fail("unterminated string") }
        let raw = UnsafeRawBufferPointer(rebasing: text.raw[token.start..<(token.start + token.count)])
        guard token.escaped else { return String(decoding: raw, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: max(raw.count, 1)) { target in
            JSONText.unescape(raw, into: UnsafeMutableRawBufferPointer(target))
        }
    }

    mutating func object(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        text.at += 1
        var members: [(String, JSONValue)] = []
        if text.consume(UInt8(ascii: "}")) { return .object(members) }
        while true {
            text.skipSpace()
            guard text.at < text.raw.count else { throw fail("unterminated object") }
            let key: String
            switch text.raw[text.at] {
            case UInt8(ascii: "\""):
                key = try string()
            case UInt8(ascii: "{"):
                // fastjson's object keys (TopicStatsTable, ConsumeStats): the key is the object's text.
                let start = text.at
                _ = try value(depth: depth + 1)
                key = String(decoding: UnsafeRawBufferPointer(rebasing: text.raw[start..<text.at]), as: UTF8.self)
            default:
                // fastjson's bare integer keys.
                let start = text.at
                while text.at < text.raw.count, text.raw[text.at] == UInt8(ascii: "-") || (48...57).contains(text.raw[text.at]) {
                    text.at += 1
                }
                guard text.at > start else { throw fail("expected a key") }
                key = String(decoding: UnsafeRawBufferPointer(rebasing: text.raw[start..<text.at]), as: UTF8.self)
            }
            guard text.consume(UInt8(ascii: ":")) else { throw fail("expected ':'") }
            members.append((key, try value(depth: depth + 1)))
            if text.consume(UInt8(ascii: ",")) { continue }
            if text.consume(UInt8(ascii: "}")) { return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        text.at += 1
        var items: [JSONValue] = []
        if text.consume(UInt8(ascii: "]")) { return .array(items) }
        while true {
            items.append(try value(depth: depth + 1))
            if text.consume(UInt8(ascii: ",")) { continue }
            if text.consume(UInt8(ascii: "]")) { return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func scalar() throws(JSONValue.ParseError) -> JSONValue {
        let start = text.at
        guard text.skipValue() else { throw fail("unexpected character") }
        let token = UnsafeRawBufferPointer(rebasing: text.raw[start..<text.at])
        if token.elementsEqual("true".utf8) { return .bool(true) }
        if token.elementsEqual("false".utf8) { return .bool(false) }
        if token.elementsEqual("null".utf8) { return .null }
        let word = String(decoding: token, as: UTF8.self)
        if let integer = Int64(word) { return .integer(integer) }
        if let double = Double(word) {
            // A number past Double's range would read as an infinity, which JSON cannot write back.
            if double.isFinite { return .number(double) }
            text.at = start
            throw fail(double.isNaN ? "unexpected character" : "number out of range")
        }
        text.at = start
        throw fail("unexpected character")
    }
}
