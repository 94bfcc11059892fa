/// A small JSON model for the store's config files. The parser also accepts what fastjson writes and
/// RocketMQ's files therefore contain: object keys that are bare integers (`{0:250,1:250}`).
public enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case integer(Int64)
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value): return Int64(exactly: value.rounded())
        case .string(let text): return Int64(text)
        default: return nil
        }
    }
    public var string: String? { if case .string(let text) = self { return text }; return nil }
    public var bool: Bool? { if case .bool(let value) = self { return value }; return nil }
    public var array: [JSONValue]? { if case .array(let items) = self { return items }; return nil }
    public var members: [(String, JSONValue)]? { if case .object(let members) = self { return members }; return nil }

    public struct ParseError: Error, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> JSONValue {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.at == parser.bytes.count else { throw ParseError(offset: parser.at, reason: "trailing characters") }
        return value
    }

    /// Pretty text with tabs, as fastjson writes RocketMQ's files (keys in the order given).
    public func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: "\t", count: indent + 1)
        let end = String(repeating: "\t", count: indent)
        switch self {
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.map { pad + jsonString($0.0) + ":" + $0.1.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "]"
        case .string(let text): return jsonString(text)
        case .number(let value): return String(value)
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [32, 9, 10, 13].contains(bytes[at]) { at += 1 }
        }

        mutating func value() throws(ParseError) -> JSONValue {
            skipSpace()
            guard at < bytes.count else { throw ParseError(offset: at, reason: "unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "{"): return try object()
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        mutating func literal(_ word: String) throws(ParseError) {
            let expected = Array(word.utf8)
            guard at + expected.count <= bytes.count, Array(bytes[at..<at + expected.count]) == expected else {
                throw ParseError(offset: at, reason: "expected \(word)")
            }
            at += expected.count
        }

        mutating func object() throws(ParseError) -> JSONValue {
            at += 1
            var members: [(String, JSONValue)] = []
            skipSpace()
            if at < bytes.count && bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
            while true {
                skipSpace()
                guard at < bytes.count else { throw ParseError(offset: at, reason: "unterminated object") }
                let key: String
                if bytes[at] == UInt8(ascii: "\"") {
                    key = try string()
                } else if bytes[at] == UInt8(ascii: "{") {
                    // fastjson's object keys (TopicStatsTable, ConsumeStats): the key is the object's text.
                    let start = at
                    _ = try value()
                    key = String(decoding: bytes[start..<at], as: UTF8.self)
                } else {
                    // fastjson's bare integer keys.
                    let start = at
                    while at < bytes.count, bytes[at] == UInt8(ascii: "-") || (48...57).contains(bytes[at]) { at += 1 }
                    guard at > start else { throw ParseError(offset: at, reason: "expected a key") }
                    key = String(decoding: bytes[start..<at], as: UTF8.self)
                }
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw ParseError(offset: at, reason: "expected ':'") }
                at += 1
                members.append((key, try value()))
                skipSpace()
                guard at < bytes.count else { throw ParseError(offset: at, reason: "unterminated object") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                throw ParseError(offset: at, reason: "expected ',' or '}'")
            }
        }

        mutating func array() throws(ParseError) -> JSONValue {
            at += 1
            var items: [JSONValue] = []
            skipSpace()
            if at < bytes.count && bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard at < bytes.count else { throw ParseError(offset: at, reason: "unterminated array") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                throw ParseError(offset: at, reason: "expected ',' or ']'")
            }
        }

        mutating func string() throws(ParseError) -> String {
            at += 1
            var out: [UInt8] = []
            while at < bytes.count {
                let byte = bytes[at]
                at += 1
                if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if byte != UInt8(ascii: "\\") { out.append(byte); continue }
                guard at < bytes.count else { break }
                let escaped = bytes[at]
                at += 1
                switch escaped {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "u"):
                    guard at + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
                        throw ParseError(offset: at, reason: "bad \\u escape")
                    }
                    at += 4
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(code) ?? "?")).utf8))
                default: out.append(escaped)
                }
            }
            throw ParseError(offset: at, reason: "unterminated string")
        }

        mutating func number() throws(ParseError) -> JSONValue {
            let start = at
            while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) { at += 1 }
            let text = String(decoding: bytes[start..<at], as: UTF8.self)
            if let integer = Int64(text) { return .integer(integer) }
            if let double = Double(text) { return .number(double) }
            throw ParseError(offset: start, reason: "unexpected character")
        }
    }
}

/// A JSON string literal.
public func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
