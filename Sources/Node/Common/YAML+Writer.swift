extension YAML {
    /// `node` as block YAML in SnakeYAML's `dumpAsMap` shape (what RocketMQ writes `plain_acl.yml` back as): two-space
    /// maps, a list's `- ` at its key's column, `[]` for an empty list. Text is quoted only when a reader would take
    /// it for something else (a number, a boolean, null, an indicator, a comment); `.plain` values are written bare.
    public static func render(_ node: YAMLNode) -> String {
        var output = ""
        switch node.value {
        case .map(let entries): writeMap(entries, indent: 0, into: &output)
        case .list(let items): writeList(items, indent: 0, into: &output)
        default: output = scalarText(node) + "\n"
        }
        return output
    }

    private static func writeMap(_ entries: [YAMLEntry], indent: Int, into output: inout String, firstInline: Bool = false) {
        for (index, entry) in entries.enumerated() {
            if !(firstInline && index == 0) { output += String(repeating: " ", count: indent) }
            output += quoted(entry.key) + ":"
            writeValue(entry.node, indent: indent, into: &output)
        }
    }

    /// What follows `key:`: a scalar on the line, or a newline and the nested block.
    private static func writeValue(_ node: YAMLNode, indent: Int, into output: inout String) {
        switch node.value {
        case .null: output += "\n"
        case .list(let items) where items.isEmpty: output += " []\n"
        case .map(let entries) where entries.isEmpty: output += " {}\n"
        case .list(let items):
            output += "\n"
            writeList(items, indent: indent, into: &output)
        case .map(let entries):
            output += "\n"
            writeMap(entries, indent: indent + 2, into: &output)
        case .plain, .string: output += " " + scalarText(node) + "\n"
        }
    }

    private static func writeList(_ items: [YAMLNode], indent: Int, into output: inout String) {
        for item in items {
            output += String(repeating: " ", count: indent) + "-"
            switch item.value {
            case .map(let entries) where !entries.isEmpty:
                output += " "
                writeMap(entries, indent: indent + 2, into: &output, firstInline: true)
            case .list(let nested) where !nested.isEmpty:
                output += "\n"
                writeList(nested, indent: indent + 2, into: &output)
            case .null: output += "\n"
            case .list: output += " []\n"
            case .map: output += " {}\n"
            case .plain, .string: output += " " + scalarText(item) + "\n"
            }
        }
    }

    private static func scalarText(_ node: YAMLNode) -> String {
        switch node.value {
        case .plain(let text): text
        case .string(let text): quoted(text)
        default: ""
        }
    }

    /// `text` bare when it reads back as the same text, else single-quoted ('' for '), or double-quoted with escapes
    /// when it holds control characters or anything beyond ASCII (so the file is ASCII, and no combining mark can
    /// join a quote or a colon into one character).
    static func quoted(_ text: String) -> String {
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value >= 0x7F }) {
            var escaped = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\t": escaped += "\\t"
                case "\r": escaped += "\\r"
                default:
                    if scalar.value < 0x20 || scalar.value >= 0x7F {
                        let hex = String(scalar.value, radix: 16)
                        let width = scalar.value > 0xFFFF ? 8 : 4
                        escaped += (width == 8 ? "\\U" : "\\u") + String(repeating: "0", count: width - hex.count) + hex
                    } else {
                        escaped.unicodeScalars.append(scalar)
                    }
                }
            }
            return escaped + "\""
        }
        return readsAsText(text) ? text : "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Whether `text` written bare parses back as the same text.
    static func readsAsText(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last else { return false }
        if first == " " || last == " " || last == ":" || "-?:,[]{}#&*!|>'\"%@`~".contains(first) { return false }
        if text.contains(": ") || text.contains(" #") { return false }
        let lowered = text.lowercased()
        if ["true", "false", "yes", "no", "on", "off", "null", "y", "n"].contains(lowered) { return false }
        // Anything a YAML 1.1 reader may take for a number (SnakeYAML quotes such strings too).
        if text.allSatisfy({ $0.isNumber || "+-._eExXoObB:".contains($0) }) && text.contains(where: \.isNumber) { return false }
        return true
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        self[...].replacingOccurrences(target, with: replacement)
    }
}
