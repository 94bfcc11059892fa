import Remoting
import NIOCore

/// Why a body (or a JSON config file) could not be read: which type, which member, what was wrong.
public struct BodyError: Error, CustomStringConvertible, Sendable {
    public var type: String
    public var reason: String
    public init(type: String, reason: String) {
        self.type = type
        self.reason = reason
    }
    public var description: String { "\(type): \(reason)" }
}

/// A JSON body of a remoting command (RocketMQ's `RemotingSerializable` subclasses): one type per body, each
/// with its JSON shape in one place, written in fastjson's member order and read tolerantly (unknown members
/// ignored, missing optional members defaulted, missing required members an error naming them).
public protocol RemotingBody: Sendable {
    init(json: JSONValue) throws(BodyError)
    var json: JSONValue { get }
}

extension RemotingBody {
    /// The body's bytes (compact JSON).
    public func encode() -> ByteBuffer { json.encoded }

    public func encode(into buffer: inout ByteBuffer) { json.write(into: &buffer) }

    /// Reads a body; a missing or empty body reads as `{}` (so a type with only optional members decodes).
    public static func decode(from buffer: ByteBuffer?) throws(BodyError) -> Self {
        let json: JSONValue
        do { json = try JSONValue.parse(buffer) } catch {
            throw BodyError(type: String(describing: Self.self), reason: error.description)
        }
        return try Self(json: json)
    }

    public static func decode(from text: String) throws(BodyError) -> Self {
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch {
            throw BodyError(type: String(describing: Self.self), reason: error.description)
        }
        return try Self(json: json)
    }
}

/// Reads members of one JSON object with errors that name the body type and the member.
public struct BodyReader {
    public let json: JSONValue
    public let type: String

    public init(_ json: JSONValue, _ type: String) {
        self.json = json
        self.type = type
    }

    public func fail(_ reason: String) -> BodyError { BodyError(type: type, reason: reason) }

    public func requireObject() throws(BodyError) {
        guard json.members != nil else { throw fail("is not a JSON object") }
    }

    public func string(_ key: String) throws(BodyError) -> String {
        guard let value = json[key]?.string else { throw fail("lacks the string member \"\(key)\"") }
        return value
    }

    public func int64(_ key: String) throws(BodyError) -> Int64 {
        guard let value = json[key]?.int else { throw fail("lacks the integer member \"\(key)\"") }
        return value
    }

    public func int32(_ key: String) throws(BodyError) -> Int32 {
        guard let value = json[key]?.int, let narrow = Int32(exactly: value) else {
            throw fail("lacks the 32-bit integer member \"\(key)\"")
        }
        return narrow
    }

    public func optionalString(_ key: String) -> String? { json[key]?.string }
    public func int64(_ key: String, default value: Int64) -> Int64 { json[key]?.int ?? value }
    public func int(_ key: String, default value: Int, in range: ClosedRange<Int> = Int.min...Int.max) -> Int {
        guard let raw = json[key]?.int else { return value }
        return Int(max(Int64(range.lowerBound), min(Int64(range.upperBound), raw)))
    }
    public func bool(_ key: String, default value: Bool) -> Bool { json[key]?.bool ?? value }
    public func double(_ key: String, default value: Double) -> Double { json[key]?.double ?? value }

    public func array(_ key: String) throws(BodyError) -> [JSONValue] {
        guard let value = json[key] else { return [] }
        guard let items = value.array else { throw fail("member \"\(key)\" is not an array") }
        return items
    }

    public func members(_ key: String) throws(BodyError) -> [(String, JSONValue)] {
        guard let value = json[key], value != .null else { return [] }
        guard let members = value.members else { throw fail("member \"\(key)\" is not an object") }
        return members
    }

    /// Like `members`, but a missing member is an error (a config file that lost its table is corrupt).
    public func requiredMembers(_ key: String) throws(BodyError) -> [(String, JSONValue)] {
        guard json[key] != nil else { throw fail("lacks the table \"\(key)\"") }
        return try members(key)
    }
}

/// `[String]` as a JSON array of strings.
extension Array where Element == String {
    public var json: JSONValue { .array(map { .string($0) }) }
}
