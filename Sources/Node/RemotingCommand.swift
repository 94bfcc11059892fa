import IndexFile
import NIOCore

/// How a command's header is serialised (the top byte of the header word).
public enum SerializeType: UInt8, Sendable {
    case json = 0
    case rocketmq = 1
}

/// RocketMQ's `LanguageCode` (the binary header carries the number, JSON the name).
public enum LanguageCode: UInt8, Sendable, CaseIterable {
    case java = 0, cpp, dotnet, python, delphi, erlang, ruby, other, http, go, php, oms, rust

    public var name: String {
        switch self {
        case .java: "JAVA"
        case .cpp: "CPP"
        case .dotnet: "DOTNET"
        case .python: "PYTHON"
        case .delphi: "DELPHI"
        case .erlang: "ERLANG"
        case .ruby: "RUBY"
        case .other: "OTHER"
        case .http: "HTTP"
        case .go: "GO"
        case .php: "PHP"
        case .oms: "OMS"
        case .rust: "RUST"
        }
    }

    public init(name: String) {
        self = LanguageCode.allCases.first { $0.name == name } ?? .other
    }
}

/// One remoting frame: a request or a response, its header fields and an optional body.
///
/// Frame: `length (4) | headerWord (4) = serializeType << 24 | H | header (H) | body`, where
/// `length = 4 + H + body` does not count itself.
public struct RemotingCommand: Sendable {
    public static let responseFlag: Int32 = 1
    public static let onewayFlag: Int32 = 2
    /// The version we announce (Java 4.9.7's ordinal); C ignores it, fastjson maps unknown names to null.
    public static let ourVersion: Int32 = 407

    public var code: Int32
    public var language: LanguageCode = .java
    public var version: Int32 = RemotingCommand.ourVersion
    public var opaque: Int32
    public var flag: Int32 = 0
    public var remark: String?
    /// The per-code header fields, always strings (RocketMQ's `extFields`).
    public var extFields: [String: String] = [:]
    public var body: ByteBuffer?
    /// How the header came in; responses go back the same way.
    public var serializeType: SerializeType = .json

    public init(code: Int32, opaque: Int32, flag: Int32 = 0, remark: String? = nil, extFields: [String: String] = [:],
                body: ByteBuffer? = nil, serializeType: SerializeType = .json) {
        self.code = code
        self.opaque = opaque
        self.flag = flag
        self.remark = remark
        self.extFields = extFields
        self.body = body
        self.serializeType = serializeType
    }

    public var isResponse: Bool { flag & RemotingCommand.responseFlag != 0 }
    public var isOneway: Bool { flag & RemotingCommand.onewayFlag != 0 }

    /// A response to `request`: same opaque and serialisation, response flag set.
    public static func response(to request: RemotingCommand, code: Int32, remark: String? = nil,
                                extFields: [String: String] = [:], body: ByteBuffer? = nil) -> RemotingCommand {
        RemotingCommand(code: code, opaque: request.opaque, flag: RemotingCommand.responseFlag, remark: remark,
                        extFields: extFields, body: body, serializeType: request.serializeType)
    }
}

/// Why a frame could not be decoded. The connection that sent it is closed; others go on.
public struct RemotingDecodingError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { "bad remoting frame: \(reason)" }
}

// MARK: - Header codecs

extension RemotingCommand {
    /// The header as Java writes it: alphabetical keys, every extFields value a string, no null members.
    func encodeJSONHeader(into buffer: inout ByteBuffer) {
        var text = "{\"code\":\(code)"
        if !extFields.isEmpty {
            text += ",\"extFields\":{"
            text += extFields.keys.sorted().map { jsonString($0) + ":" + jsonString(extFields[$0]!) }.joined(separator: ",")
            text += "}"
        }
        text += ",\"flag\":\(flag),\"language\":\(jsonString(language.name)),\"opaque\":\(opaque)"
        if let remark { text += ",\"remark\":" + jsonString(remark) }
        text += ",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":\(version)}"
        buffer.writeString(text)
    }

    /// RocketMQ's binary header (§1.5 of the protocol reference).
    func encodeBinaryHeader(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Int16(truncatingIfNeeded: code))
        buffer.writeInteger(language.rawValue)
        buffer.writeInteger(Int16(truncatingIfNeeded: version))
        buffer.writeInteger(opaque)
        buffer.writeInteger(flag)
        let remarkBytes = Array((remark ?? "").utf8)
        buffer.writeInteger(Int32(remarkBytes.count))
        buffer.writeBytes(remarkBytes)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        var extLength = 0
        for key in extFields.keys.sorted() {
            let value = extFields[key]!
            guard !key.isEmpty, !value.isEmpty else { continue }  // empty values do not survive the binary form
            extLength += buffer.writeInteger(Int16(key.utf8.count)) + buffer.writeString(key)
            extLength += buffer.writeInteger(Int32(value.utf8.count)) + buffer.writeString(value)
        }
        buffer.setInteger(Int32(extLength), at: lengthIndex)
    }

    static func decodeJSONHeader(_ bytes: ByteBuffer) throws(RemotingDecodingError) -> RemotingCommand {
        let text = String(buffer: bytes)
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { throw RemotingDecodingError(reason: "header is not JSON (\(error))") }
        guard case .object = json else { throw RemotingDecodingError(reason: "header is not a JSON object") }
        guard let code = json["code"]?.int, let opaque = json["opaque"]?.int else {
            throw RemotingDecodingError(reason: "header lacks code or opaque")
        }
        var command = RemotingCommand(code: Int32(truncatingIfNeeded: code), opaque: Int32(truncatingIfNeeded: opaque))
        command.flag = Int32(truncatingIfNeeded: json["flag"]?.int ?? 0)
        command.version = Int32(truncatingIfNeeded: json["version"]?.int ?? 0)
        command.language = LanguageCode(name: json["language"]?.string ?? "OTHER")
        command.remark = json["remark"]?.string
        for (key, value) in json["extFields"]?.members ?? [] {
            // Senders put numbers and booleans where Java writes strings: keep every value as text.
            switch value {
            case .string(let text): command.extFields[key] = text
            case .integer(let number): command.extFields[key] = String(number)
            case .number(let number): command.extFields[key] = String(number)
            case .bool(let flag): command.extFields[key] = flag ? "true" : "false"
            case .null, .object, .array: continue
            }
        }
        return command
    }

    static func decodeBinaryHeader(_ bytes: ByteBuffer) throws(RemotingDecodingError) -> RemotingCommand {
        var buffer = bytes
        let headerLength = buffer.readableBytes
        guard let code = buffer.readInteger(as: Int16.self), let language = buffer.readInteger(as: UInt8.self),
              let version = buffer.readInteger(as: Int16.self), let opaque = buffer.readInteger(as: Int32.self),
              let flag = buffer.readInteger(as: Int32.self), let remarkLength = buffer.readInteger(as: Int32.self) else {
            throw RemotingDecodingError(reason: "binary header shorter than its fixed 17 bytes")
        }
        guard remarkLength >= 0, Int(remarkLength) <= headerLength, let remarkText = buffer.readString(length: Int(remarkLength)) else {
            throw RemotingDecodingError(reason: "binary header remark length \(remarkLength) is out of bounds")
        }
        guard let extLength = buffer.readInteger(as: Int32.self), extLength >= 0, Int(extLength) <= buffer.readableBytes else {
            throw RemotingDecodingError(reason: "binary header extFields length is out of bounds")
        }
        var command = RemotingCommand(code: Int32(code), opaque: opaque, flag: flag, serializeType: .rocketmq)
        command.language = LanguageCode(rawValue: language) ?? .other
        command.version = Int32(version)
        command.remark = remarkLength > 0 ? remarkText : nil
        var entries = buffer.readSlice(length: Int(extLength))!
        while entries.readableBytes > 0 {
            guard let keyLength = entries.readInteger(as: Int16.self), keyLength >= 0,
                  let key = entries.readString(length: Int(keyLength)),
                  let valueLength = entries.readInteger(as: Int32.self), valueLength >= 0,
                  let value = entries.readString(length: Int(valueLength)) else {
                throw RemotingDecodingError(reason: "binary header extFields entry runs past its block")
            }
            command.extFields[key] = value
        }
        return command
    }
}
