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
    /// The per-code header fields, always strings (RocketMQ's `extFields`). A decoded command keeps them as
    /// the bytes they came in (`fields`); this dictionary view parses them on each read, so hot paths read
    /// `fields` instead. Setting it replaces the raw bytes.
    public var extFields: [String: String] {
        get { fieldTable ?? fields?.dictionary ?? [:] }
        set { fieldTable = newValue; fields = nil }
    }
    var fieldTable: [String: String]?
    /// The header fields as on the wire (or as written by `HeaderFields.Writer`), when not a dictionary.
    public var fields: HeaderFields?
    public var body: ByteBuffer?
    /// How the header came in; responses go back the same way.
    public var serializeType: SerializeType = .json

    public init(code: Int32, opaque: Int32, flag: Int32 = 0, remark: String? = nil, extFields: [String: String] = [:],
                body: ByteBuffer? = nil, serializeType: SerializeType = .json) {
        self.code = code
        self.opaque = opaque
        self.flag = flag
        self.remark = remark
        self.fieldTable = extFields.isEmpty ? nil : extFields
        self.body = body
        self.serializeType = serializeType
    }

    /// A command whose fields were written with `HeaderFields.Writer` (no dictionary; the client's hot path).
    public init(code: Int32, fields: HeaderFields, body: ByteBuffer? = nil, serializeType: SerializeType = .rocketmq) {
        self.code = code
        self.opaque = 0
        self.fields = fields
        self.body = body
        self.serializeType = serializeType
    }

    /// One field's value as text, from whichever form the fields are in.
    public func field(_ key: StaticString) -> String? {
        if let fieldTable { return fieldTable[key.description] }
        return fields?[key]?.string
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
        buffer.writeString("{\"code\":\(code)")
        if let fieldTable, !fieldTable.isEmpty {
            buffer.writeString(",\"extFields\":{")
            var first = true
            for key in fieldTable.keys.sorted() {
                if !first { buffer.writeString(",") }
                first = false
                buffer.writeString(jsonString(key) + ":" + jsonString(fieldTable[key]!))
            }
            buffer.writeString("}")
        } else if let fields {
            buffer.writeString(",\"extFields\":")
            switch fields.format {
            case .json:
                var text = fields.bytes
                buffer.writeBuffer(&text)
            case .binary:
                buffer.writeString("{")
                var first = true
                fields.forEach { key, value in
                    if !first { buffer.writeString(",") }
                    first = false
                    JSONText.writeQuoted(key, into: &buffer)
                    buffer.writeString(":")
                    value.withBytes { JSONText.writeQuoted($0, into: &buffer) }
                    return true
                }
                buffer.writeString("}")
            }
        }
        buffer.writeString(",\"flag\":\(flag),\"language\":\"\(language.name)\",\"opaque\":\(opaque)")
        if let remark { buffer.writeString(",\"remark\":" + jsonString(remark)) }
        buffer.writeString(",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":\(version)}")
    }

    /// RocketMQ's binary header (§1.5 of the protocol reference).
    func encodeBinaryHeader(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Int16(truncatingIfNeeded: code))
        buffer.writeInteger(language.rawValue)
        buffer.writeInteger(Int16(truncatingIfNeeded: version))
        buffer.writeInteger(opaque)
        buffer.writeInteger(flag)
        if let remark {
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(Int32(0))
            buffer.setInteger(Int32(buffer.writeString(remark)), at: lengthIndex)
        } else {
            buffer.writeInteger(Int32(0))
        }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        var extLength = 0
        if let fieldTable {
            extLength = HeaderFields.writeBinaryEntries(fieldTable, into: &buffer)
        } else if let fields {
            switch fields.format {
            case .binary:
                var block = fields.bytes
                extLength = buffer.writeBuffer(&block)
            case .json:
                // Through a dictionary (the last of a repeated key wins, as it does in `dictionary` and in Java's
                // HashMap): written pair by pair, a repeated key whose last value is empty would bring back an earlier
                // value (FuzzRemotingFrame found it). Off the hot path: only a JSON-read command written as binary.
                extLength = HeaderFields.writeBinaryEntries(fields.dictionary, into: &buffer)
            }
        }
        buffer.setInteger(Int32(extLength), at: lengthIndex)
    }

    /// Reads a JSON header by scanning its bytes: the fixed members become properties, `extFields` stays as
    /// its text (`fields`). Malformed text, or a header without code or opaque, throws.
    static func decodeJSONHeader(_ bytes: ByteBuffer) throws(RemotingDecodingError) -> RemotingCommand {
        var code: Int64?
        var opaque: Int64?
        var flag: Int64 = 0
        var version: Int64 = 0
        var language = LanguageCode.other
        var remark: String?
        var fields: HeaderFields?
        let problem: String? = bytes.withUnsafeReadableBytes { raw -> String? in
            var scanner = JSONText(raw)
            guard scanner.consume(UInt8(ascii: "{")) else { return "header is not a JSON object" }
            if scanner.consume(UInt8(ascii: "}")) { return nil }
            while true {
                guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return "header is not JSON (expected a member name at byte \(scanner.at))" }
                scanner.skipSpace()
                let valueAt = scanner.at
                let keyBytes = UnsafeRawBufferPointer(rebasing: raw[key.start..<(key.start + key.count)])
                func named(_ text: StaticString) -> Bool { HeaderFields.Value.equal(keyBytes, text) }
                if let text = scanner.string() {
                    let value = HeaderFields.Value(bytes: bytes, start: text.start, count: text.count, escaped: text.escaped)
                    if named("remark") { remark = value.string }
                    else if named("language") { language = value.withBytes { LanguageCode(bytes: $0) } }
                    else if named("code") { code = value.int64 }
                    else if named("opaque") { opaque = value.int64 }
                    else if named("flag") { flag = value.int64 ?? 0 }
                    else if named("version") { version = value.int64 ?? 0 }
                } else {
                    guard scanner.skipValue() else { return "header is not JSON (bad value at byte \(valueAt))" }
                    let value = HeaderFields.Value(bytes: bytes, start: valueAt, count: scanner.at - valueAt, escaped: false)
                    if named("code") { code = value.int64 }
                    else if named("opaque") { opaque = value.int64 }
                    else if named("flag") { flag = value.int64 ?? 0 }
                    else if named("version") { version = value.int64 ?? 0 }
                    else if named("extFields"), raw[valueAt] == UInt8(ascii: "{") {
                        fields = HeaderFields(bytes: bytes.getSlice(at: bytes.readerIndex + valueAt, length: scanner.at - valueAt)!, format: .json)
                    }
                }
                if scanner.consume(UInt8(ascii: ",")) { continue }
                guard scanner.consume(UInt8(ascii: "}")), scanner.atEnd else { return "header is not JSON (expected , or } at byte \(scanner.at))" }
                return nil
            }
        }
        if let problem { throw RemotingDecodingError(reason: problem) }
        guard let code, let opaque else { throw RemotingDecodingError(reason: "header lacks code or opaque") }
        var command = RemotingCommand(code: Int32(truncatingIfNeeded: code), opaque: Int32(truncatingIfNeeded: opaque))
        command.flag = Int32(truncatingIfNeeded: flag)
        command.version = Int32(truncatingIfNeeded: version)
        command.language = language
        command.remark = remark
        command.fields = fields
        return command
    }

    /// The binary header's fixed part and where its remark and fields lie, read from the bytes in place.
    private struct BinaryLayout {
        var code: Int16 = 0, language: UInt8 = 0, version: Int16 = 0, opaque: Int32 = 0, flag: Int32 = 0
        var remarkLength = 0, extLength = 0
        static let fixedBytes = 17
        var extStart: Int { Self.fixedBytes + remarkLength + 4 }

        /// Reads `raw` (the whole header); a reason when it does not hold together.
        mutating func read(_ raw: UnsafeRawBufferPointer) -> String? {
            func int<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T { T(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: T.self)) }
            guard raw.count >= Self.fixedBytes else { return "binary header shorter than its fixed 17 bytes" }
            (code, language, version) = (int(0, Int16.self), raw[2], int(3, Int16.self))
            (opaque, flag) = (int(5, Int32.self), int(9, Int32.self))
            let remark = int(13, Int32.self)
            guard remark >= 0, Int(remark) <= raw.count - Self.fixedBytes else {
                return "binary header remark length \(remark) is out of bounds"
            }
            remarkLength = Int(remark)
            guard raw.count - Self.fixedBytes - remarkLength >= 4 else { return "binary header extFields length is out of bounds" }
            let ext = int(Self.fixedBytes + remarkLength, Int32.self)
            guard ext >= 0, Int(ext) <= raw.count - extStart else { return "binary header extFields length is out of bounds" }
            extLength = Int(ext)
            var at = extStart  // every entry must lie inside the block
            let end = extStart + extLength
            while at < end {
                guard end - at >= 2 else { return "binary header extFields entry runs past its block" }
                let keyLength = Int(int(at, Int16.self))
                guard keyLength >= 0, end - at - 2 >= keyLength + 4 else { return "binary header extFields entry runs past its block" }
                at += 2 + keyLength
                let valueLength = Int(int(at, Int32.self))
                guard valueLength >= 0, end - at - 4 >= valueLength else { return "binary header extFields entry runs past its block" }
                at += 4 + valueLength
            }
            return nil
        }
    }

    static func decodeBinaryHeader(_ bytes: ByteBuffer) throws(RemotingDecodingError) -> RemotingCommand {
        var layout = BinaryLayout()
        if let problem = bytes.withUnsafeReadableBytes({ layout.read($0) }) { throw RemotingDecodingError(reason: problem) }
        var command = RemotingCommand(code: Int32(layout.code), opaque: layout.opaque, flag: layout.flag, serializeType: .rocketmq)
        command.language = LanguageCode(rawValue: layout.language) ?? .other
        command.version = Int32(layout.version)
        if layout.remarkLength > 0 {
            command.remark = String(buffer: bytes.getSlice(at: bytes.readerIndex + BinaryLayout.fixedBytes, length: layout.remarkLength)!)
        }
        if layout.extLength > 0 {
            command.fields = HeaderFields(bytes: bytes.getSlice(at: bytes.readerIndex + layout.extStart, length: layout.extLength)!, format: .binary)
        }
        return command
    }
}

extension LanguageCode {
    /// The code named by `bytes` (a JSON header's `language`), OTHER when unknown; no allocation.
    init(bytes: UnsafeRawBufferPointer) {
        for code in LanguageCode.allCases {
            var name = code.name
            if name.withUTF8({ bytes.elementsEqual(UnsafeRawBufferPointer($0)) }) { self = code; return }
        }
        self = .other
    }
}
