/// A request's header fields read by name, with errors that say which field is missing or malformed (RocketMQ's
/// `@CFNotNull` checks and `decodeCommandCustomHeader`). Off the hot path: SEND and PULL read `HeaderFields`.
public struct RequestHeader: Sendable {
    public let fields: [String: String]
    public let code: Int32

    public init(_ request: RemotingCommand) {
        fields = request.extFields
        code = request.code
    }

    /// A field that is missing, empty or not of its type: answered with SYSTEM_ERROR and this remark.
    public struct FieldError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Checks that every named field is present, naming all that are not.
    public func require(_ names: String...) throws(FieldError) {
        let missing = names.filter { (fields[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw FieldError(description: "the header of request code \(code) lacks \(missing.joined(separator: ", "))")
        }
    }

    /// A non-empty text field.
    public func string(_ name: String) throws(FieldError) -> String {
        guard let value = fields[name], !value.isEmpty else {
            throw FieldError(description: "the header of request code \(code) lacks the field \(name)")
        }
        return value
    }

    public func optionalString(_ name: String) -> String? { fields[name].flatMap { $0.isEmpty ? nil : $0 } }

    public func int64(_ name: String) throws(FieldError) -> Int64 {
        let text = try string(name)
        guard let value = Int64(text) else { throw malformed(name, text, "an integer") }
        return value
    }

    public func int32(_ name: String) throws(FieldError) -> Int32 {
        let text = try string(name)
        guard let value = Int32(text) else { throw malformed(name, text, "a 32-bit integer") }
        return value
    }

    /// An optional integer: nil when absent, an error when present but not a number.
    public func optionalInt64(_ name: String) throws(FieldError) -> Int64? {
        guard let text = optionalString(name) else { return nil }
        guard let value = Int64(text) else { throw malformed(name, text, "an integer") }
        return value
    }

    public func optionalInt32(_ name: String) throws(FieldError) -> Int32? {
        guard let text = optionalString(name) else { return nil }
        guard let value = Int32(text) else { throw malformed(name, text, "a 32-bit integer") }
        return value
    }

    /// "true"/"1" (RocketMQ's booleans travel as strings); absent is `defaultValue`.
    public func bool(_ name: String, default defaultValue: Bool = false) -> Bool {
        guard let text = optionalString(name) else { return defaultValue }
        return text == "true" || text == "1"
    }

    private func malformed(_ name: String, _ text: String, _ kind: String) -> FieldError {
        let shown = text.count > 64 ? String(text.prefix(64)) + "..." : text
        return FieldError(description: "the field \(name) of request code \(code) must be \(kind), not \"\(shown)\"")
    }
}

extension RemotingCommand {
    /// SYSTEM_ERROR naming the field at fault.
    public static func response(to request: RemotingCommand, error: RequestHeader.FieldError) -> RemotingCommand {
        .response(to: request, code: ResponseCode.systemError, remark: error.description)
    }
}
