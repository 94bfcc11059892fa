import NIOCore

/// A client's plain-ACL identity (RocketMQ's `SessionCredentials`): every request it sends carries `AccessKey`,
/// `Signature` and, when set, `SecurityToken` among its header fields.
public struct SessionCredentials: Sendable, Equatable {
    public static let accessKeyField = "AccessKey"
    public static let signatureField = "Signature"
    public static let securityTokenField = "SecurityToken"
    /// RocketMQ's `MixAll.UNIQUE_MSG_QUERY_FLAG`: the broker leaves it out of the signed content.
    public static let uniqueKeyQueryField = "_UNIQUE_KEY_QUERY"

    public var accessKey: String
    public var secretKey: String
    public var securityToken: String?

    public init(accessKey: String, secretKey: String, securityToken: String? = nil) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.securityToken = securityToken
    }
}

extension RemotingCommand {
    /// RocketMQ's request signature (`AclUtils.combineRequestContent` + `AclSigner`): Base64 of HmacSHA1, keyed by
    /// `secretKey`, over the header field values in key order (a TreeMap's: the keys' UTF-8 bytes compared;
    /// `Signature` and `_UNIQUE_KEY_QUERY` left out; a key given twice counts once, with its last value), then the
    /// body. The C++ client 1.2.3 signs the same way (its `ClientRPCHook`: a sorted map of the fields, then the body).
    public func aclSignature(secretKey: String) -> String {
        var hmac = HMACSHA1(key: secretKey)
        if let fieldTable {
            for key in fieldTable.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) where Self.isSigned(key) {
                hmac.update(fieldTable[key]!)
            }
        } else if let fields {
            var entries: [(key: [UInt8], value: HeaderFields.Value)] = []
            fields.forEach { key, value in
                entries.append((Array(key), value))
                return true
            }
            // Stable sort, then keep each key's last entry (a HashMap on the Java side keeps the last one).
            let ordered = entries.enumerated().sorted { lhs, rhs in
                lhs.element.key == rhs.element.key ? lhs.offset < rhs.offset : lhs.element.key.lexicographicallyPrecedes(rhs.element.key)
            }
            for (index, entry) in ordered.enumerated() {
                if index + 1 < ordered.count && ordered[index + 1].element.key == entry.element.key { continue }
                guard Self.isSigned(entry.element.key) else { continue }
                entry.element.value.withBytes { hmac.update($0) }
            }
        }
        body?.withUnsafeReadableBytes { hmac.update($0) }
        return Base64.encode(hmac.finalize())
    }

    private static func isSigned(_ key: String) -> Bool { key != SessionCredentials.signatureField && key != SessionCredentials.uniqueKeyQueryField }

    private static func isSigned(_ key: [UInt8]) -> Bool {
        !key.elementsEqual(SessionCredentials.signatureField.utf8) && !key.elementsEqual(SessionCredentials.uniqueKeyQueryField.utf8)
    }

    /// Adds `AccessKey` (and `SecurityToken`), then the `Signature` over every field and the body, as RocketMQ's
    /// `AclClientRPCHook` does before a request leaves. Fields written by `HeaderFields.Writer` stay in the binary
    /// layout (the three entries are appended); a dictionary stays a dictionary.
    public mutating func sign(with credentials: SessionCredentials) {
        if let fields, fieldTable == nil, fields.format == .binary {
            var writer = HeaderFields.Writer(capacity: fields.bytes.readableBytes + 128)
            writer.buffer.writeImmutableBuffer(fields.bytes)
            writer.append("AccessKey", credentials.accessKey)
            if let token = credentials.securityToken { writer.append("SecurityToken", token) }
            self.fields = writer.fields
            let signature = aclSignature(secretKey: credentials.secretKey)
            writer.append("Signature", signature)
            self.fields = writer.fields
            return
        }
        var table = extFields
        table[SessionCredentials.accessKeyField] = credentials.accessKey
        if let token = credentials.securityToken { table[SessionCredentials.securityTokenField] = token }
        table[SessionCredentials.signatureField] = nil
        extFields = table
        table[SessionCredentials.signatureField] = aclSignature(secretKey: credentials.secretKey)
        extFields = table
    }
}
