/// A white-address pattern of RocketMQ's plain ACL (`RemoteAddressStrategyFactory`): blank (matches nothing), `*`
/// (`*.*.*.*`, `*:*:*:*:*:*:*:*`: everything), one address, a comma list (`10.0.0.1,10.0.0.2`), a brace list in the
/// last part (`192.168.0.{1,2}`), or an IPv4 range in one of the last three parts (`192.168.*.*`, `192.168.1.1-5`,
/// `10.1-20.*.*`; the parts after a range must be `*`). IPv6 addresses match exactly (any spelling of the same
/// address); IPv6 ranges are refused at load.
public enum AclAddressPattern: Sendable, Equatable {
    case blank
    case any
    case addresses([IPAddressValue])
    /// `prefix` are the leading octets, `position` (1...3) the part that ranges over `lower...upper`.
    case range(prefix: [UInt8], lower: UInt8, upper: UInt8)

    /// Parses a pattern; a malformed one throws with the reason.
    public init(parsing text: String) throws(AclPatternError) {
        let text = String(text.trimmingSpaces)
        if text.isEmpty { self = .blank; return }
        if text == "*" || text == "*.*.*.*" || text == "*:*:*:*:*:*:*:*" { self = .any; return }
        if text.hasSuffix("}") {
            guard let open = text.lastIndex(of: "{"), let separator = text[..<open].last, separator == "." || separator == ":" else {
                throw AclPatternError("\"\(text)\": a brace list must be the last part (192.168.0.{1,2})")
            }
            let members = text[text.index(after: open)..<text.index(before: text.endIndex)].split(separator: ",")
            guard !members.isEmpty else { throw AclPatternError("\"\(text)\": empty brace list") }
            let head = String(text[..<open])
            self = .addresses(try members.map { member throws(AclPatternError) in try Self.address(head + member.trimmingSpaces) })
            return
        }
        if text.contains(",") {
            self = .addresses(try text.split(separator: ",").map { part throws(AclPatternError) in try Self.address(String(part.trimmingSpaces)) })
            return
        }
        if text.contains("*") || text.contains("-") {
            self = try Self.range(text)
            return
        }
        self = .addresses([try Self.address(text)])
    }

    private static func address(_ text: String) throws(AclPatternError) -> IPAddressValue {
        guard let address = IPAddressValue(text) else { throw AclPatternError("\"\(text)\" is not an IPv4 or IPv6 address") }
        return address
    }

    private static func range(_ text: String) throws(AclPatternError) -> AclAddressPattern {
        guard !text.contains(":") else { throw AclPatternError("\"\(text)\": IPv6 ranges are not supported; list the addresses") }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard parts.count == 4 else { throw AclPatternError("\"\(text)\" needs four parts (192.168.*.*)") }
        guard let position = parts.firstIndex(where: { $0 == "*" || $0.contains("-") }), position >= 1 else {
            throw AclPatternError("\"\(text)\": the first part must be a number")
        }
        var prefix: [UInt8] = []
        for part in parts[..<position] {
            guard part.allSatisfy(\.isASCIIDigit), let octet = UInt8(part) else { throw AclPatternError("\"\(text)\": \"\(part)\" is not a number 0-255") }
            prefix.append(octet)
        }
        guard parts[(position + 1)...].allSatisfy({ $0 == "*" }) else {
            throw AclPatternError("\"\(text)\": the parts after a range or * must be *")
        }
        if parts[position] == "*" { return .range(prefix: prefix, lower: 0, upper: 255) }
        let bounds = parts[position].split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let lower = UInt8(bounds[0].trimmingSpaces), let upper = UInt8(bounds[1].trimmingSpaces), lower <= upper else {
            throw AclPatternError("\"\(text)\": \"\(parts[position])\" must be a range low-high within 0-255")
        }
        return .range(prefix: prefix, lower: lower, upper: upper)
    }

    /// Whether a client at `host` (an address without port) matches.
    public func matches(_ host: String) -> Bool {
        switch self {
        case .blank: return false
        case .any: return true
        case .addresses(let addresses):
            guard let address = IPAddressValue(host) else { return false }
            return addresses.contains(address)
        case .range(let prefix, let lower, let upper):
            guard case .v4(let octets)? = IPAddressValue(host) else { return false }
            guard octets.starts(with: prefix) else { return false }
            let value = octets[prefix.count]
            return value >= lower && value <= upper
        }
    }
}

public struct AclPatternError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An IPv4 or IPv6 address as numbers, so `::1` and `0:0:0:0:0:0:0:1` compare equal.
public enum IPAddressValue: Sendable, Equatable, Hashable {
    case v4([UInt8])
    case v6([UInt16])

    public init?(_ text: String) {
        if text.contains(":") {
            guard let groups = Self.ipv6(text) else { return nil }
            // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
            if groups[0..<5].allSatisfy({ $0 == 0 }), groups[5] == 0xFFFF {
                self = .v4([UInt8(groups[6] >> 8), UInt8(groups[6] & 0xFF), UInt8(groups[7] >> 8), UInt8(groups[7] & 0xFF)])
            } else {
                self = .v6(groups)
            }
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit), let octet = UInt8(part) else { return nil }
            octets.append(octet)
        }
        self = .v4(octets)
    }

    private static func ipv6(_ text: String) -> [UInt16]? {
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }  // a zone id
        var tail: [UInt16] = []
        if let dotted = text.split(separator: ":").last, dotted.contains("."), case .v4(let octets)? = IPAddressValue(String(dotted)) {
            tail = [UInt16(octets[0]) << 8 | UInt16(octets[1]), UInt16(octets[2]) << 8 | UInt16(octets[3])]
            text = text.dropLast(dotted.count)
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, group.allSatisfy(\.isHexDigit), let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 {
            let all = head + tail
            return all.count == 8 ? all : nil
        }
        guard let rest = groups(halves[1]) else { return nil }
        let known = head.count + rest.count + tail.count
        guard known <= 7 else { return nil }
        return head + [UInt16](repeating: 0, count: 8 - known) + rest + tail
    }
}

extension Substring {
    func components(separatedBy separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = self
        while let range = rest.firstRange(of: separator) {
            parts.append(rest[rest.startIndex..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}

extension String {
    /// The text without leading and trailing spaces.
    public var trimmingSpaces: Substring { self[...].trimmingSpaces }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
