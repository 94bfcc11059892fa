/// The YAML subset `plain_acl.yml` uses (RocketMQ reads it with SnakeYAML): block maps, block lists of scalars and of
/// maps (the `- ` at the key's column, as SnakeYAML writes, or deeper), plain, 'single' and "double" quoted scalars,
/// flow lists of scalars (`[a, b]`, `[]`), `{}`, comments and a leading `---`. Anchors, aliases, tags, multi-line
/// scalars and flow maps with members are refused with the line, never guessed at.
///
/// Bounded: at most `sizeBytesMax` of text and `depthMax` levels of nesting; the parser is recursive only in depth,
/// so a hostile file costs at most a bounded multiple of its length.
public struct YAMLNode: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case null
        /// An unquoted scalar (a number, a boolean, or text).
        case plain(String)
        /// A quoted scalar: always text.
        case string(String)
        case list([YAMLNode])
        case map([YAMLEntry])
    }

    public var value: Value
    /// 1-based line of the node's first token (0 for nodes built in code).
    public var line: Int

    public init(_ value: Value, line: Int = 0) {
        self.value = value
        self.line = line
    }

    /// The scalar's text (plain or quoted), nil for anything else.
    public var text: String? {
        switch value {
        case .plain(let text), .string(let text): text
        default: nil
        }
    }
}

public struct YAMLEntry: Sendable, Equatable {
    public var key: String
    public var node: YAMLNode
    /// 1-based line of the key (0 for entries built in code).
    public var line: Int

    public init(_ key: String, _ node: YAMLNode, line: Int = 0) {
        self.key = key
        self.node = node
        self.line = line
    }
}

/// Why a YAML text was refused: file, line and problem (`plain_acl.yml:7: tab in indentation`).
public struct YAMLError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var problem: String

    public init(file: String, line: Int, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String { line > 0 ? "\(file):\(line): \(problem)" : "\(file): \(problem)" }
}

public enum YAML {
    public static let sizeBytesMax = 1 << 20
    public static let depthMax = 16

    /// Parses `text`; `file` names it in errors. An empty document is `.null`.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> YAMLNode {
        guard text.utf8.count <= sizeBytesMax else {
            throw YAMLError(file: file, line: 0, problem: "larger than \(sizeBytesMax) bytes")
        }
        var parser = try YAMLParser(text: text, file: file)
        return try parser.document()
    }
}

/// One meaningful line: where its content starts and the content without the comment and trailing spaces.
struct YAMLLine {
    var number: Int
    var indent: Int
    var content: Substring

    var isListItem: Bool { content == "-" || content.hasPrefix("- ") }
}

struct YAMLParser {
    let file: String
    var lines: [YAMLLine] = []
    var at = 0

    init(text: String, file: String) throws(YAMLError) {
        self.file = file
        var number = 0
        // "\r\n" is one Character in Swift: a file saved with CRLF line ends splits on it too.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let indent = line.prefix { $0 == " " }.count
            let rest = line.dropFirst(indent)
            if rest.first == "\t" { throw YAMLError(file: file, line: number, problem: "tab in indentation (use spaces)") }
            let content = try Self.strippingComment(rest, file: file, line: number)
            if content.isEmpty || (content == "---" && lines.isEmpty) { continue }
            if content == "---" || content == "..." {
                throw YAMLError(file: file, line: number, problem: "more than one document")
            }
            lines.append(YAMLLine(number: number, indent: indent, content: content))
        }
    }

    /// The line without its comment (a `#` at its start or after a space, outside quotes) and trailing spaces.
    static func strippingComment(_ text: Substring, file: String, line: Int) throws(YAMLError) -> Substring {
        var quote: Character?
        var previous: Character = " "
        var end = text.endIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let open = quote {
                let next = text.index(after: index)
                if open == "'" && character == "'" && next < text.endIndex && text[next] == "'" {
                    index = next  // '' inside a 'quoted' scalar is one quote, not its end
                } else if character == open {
                    quote = nil
                } else if open == "\"" && character == "\\" {
                    index = next
                }
            } else if character == "#" && (previous == " " || previous == "\t") {
                end = index
                break
            } else if (character == "'" || character == "\"") && (previous == " " || previous == ":" || previous == "-" || previous == "[" || previous == ",") {
                quote = character
            }
            if index < text.endIndex {
                previous = text[index]
                index = text.index(after: index)
            }
        }
        var content = text[text.startIndex..<end]
        while let last = content.last, last == " " || last == "\t" { content = content.dropLast() }
        return content
    }

    mutating func document() throws(YAMLError) -> YAMLNode {
        guard let first = lines.first else { return YAMLNode(.null) }
        guard first.indent == 0 else { throw error(first.number, "the document must start at column 1") }
        let node = try block(indent: 0, depth: 1)
        if at < lines.count { throw error(lines[at].number, "unexpected indentation") }
        return node
    }

    func error(_ line: Int, _ problem: String) -> YAMLError { YAMLError(file: file, line: line, problem: problem) }

    /// A map or a list whose lines start at column `indent`.
    mutating func block(indent: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        guard depth <= YAML.depthMax else { throw error(lines[at].number, "nested deeper than \(YAML.depthMax) levels") }
        return lines[at].isListItem ? try list(indent: indent, depth: depth) : try map(indent: indent, depth: depth)
    }

    mutating func map(indent: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        let startLine = lines[at].number
        var entries: [YAMLEntry] = []
        while at < lines.count, lines[at].indent == indent, !lines[at].isListItem {
            let line = lines[at]
            let (key, rest) = try splitKey(line)
            if entries.contains(where: { $0.key == key }) { throw error(line.number, "duplicate key \"\(key)\"") }
            at += 1
            let node: YAMLNode
            if !rest.isEmpty {
                node = try scalarOrFlow(rest, line: line.number)
            } else if at < lines.count, lines[at].indent > indent {
                node = try block(indent: lines[at].indent, depth: depth + 1)
            } else if at < lines.count, lines[at].indent == indent, lines[at].isListItem {
                node = try list(indent: indent, depth: depth + 1)  // SnakeYAML's style: the dash at the key's column
            } else {
                node = YAMLNode(.null, line: line.number)
            }
            entries.append(YAMLEntry(key, node, line: line.number))
        }
        if at < lines.count, lines[at].indent > indent { throw error(lines[at].number, "unexpected indentation") }
        return YAMLNode(.map(entries), line: startLine)
    }

    mutating func list(indent: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        let startLine = lines[at].number
        var items: [YAMLNode] = []
        while at < lines.count, lines[at].indent == indent, lines[at].isListItem {
            let line = lines[at]
            let afterDash = line.content.dropFirst()
            let spaces = afterDash.prefix { $0 == " " }.count
            let rest = afterDash.dropFirst(spaces)
            if rest.isEmpty {
                at += 1
                if at < lines.count, lines[at].indent > indent {
                    items.append(try block(indent: lines[at].indent, depth: depth + 1))
                } else {
                    items.append(YAMLNode(.null, line: line.number))
                }
            } else if Self.keyEnd(rest) != nil || rest.hasPrefix("- ") || rest == "-" {
                // `- key: value` opens a map (or `- - x` a list) whose lines continue at the column after the dash.
                lines[at] = YAMLLine(number: line.number, indent: indent + 1 + spaces, content: rest)
                items.append(try block(indent: indent + 1 + spaces, depth: depth + 1))
            } else {
                at += 1
                items.append(try scalarOrFlow(rest, line: line.number))
            }
        }
        if at < lines.count, lines[at].indent > indent { throw error(lines[at].number, "unexpected indentation") }
        return YAMLNode(.list(items), line: startLine)
    }

    /// Where a `key:` ends (the colon), when the text is a map entry.
    static func keyEnd(_ text: Substring) -> Substring.Index? {
        if text.first == "'" || text.first == "\"" {
            guard let close = text.dropFirst().firstIndex(of: text.first!) else { return nil }
            let after = text.index(after: close)
            return after < text.endIndex && text[after] == ":" && (text.index(after: after) == text.endIndex || text[text.index(after: after)] == " ")
                ? after : nil
        }
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == ":" {
                let next = text.index(after: index)
                if next == text.endIndex || text[next] == " " { return index }
            }
            index = text.index(after: index)
        }
        return nil
    }

    func splitKey(_ line: YAMLLine) throws(YAMLError) -> (String, Substring) {
        guard let colon = Self.keyEnd(line.content) else {
            throw error(line.number, "expected \"key: value\", found \"\(line.content.prefix(60))\"")
        }
        let rawKey = line.content[line.content.startIndex..<colon]
        let key: String
        switch try scalar(rawKey, line: line.number).value {
        case .plain(let text), .string(let text): key = text
        default: throw error(line.number, "empty key")
        }
        let rest = line.content[line.content.index(after: colon)...].drop { $0 == " " }
        return (key, rest)
    }

    func scalarOrFlow(_ text: Substring, line: Int) throws(YAMLError) -> YAMLNode {
        if text == "{}" { return YAMLNode(.map([]), line: line) }
        if text.first == "{" { throw error(line, "flow maps with members are not supported; write the map as a block") }
        guard text.first == "[" else { return try scalar(text, line: line) }
        guard text.last == "]" else { throw error(line, "a flow list must end on its line with ]") }
        let inner = text.dropFirst().dropLast().trimmingSpaces
        if inner.isEmpty { return YAMLNode(.list([]), line: line) }
        var items: [YAMLNode] = []
        for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingSpaces
            if item.first == "[" || item.first == "{" { throw error(line, "nested flow collections are not supported") }
            items.append(try scalar(item, line: line))
        }
        return YAMLNode(.list(items), line: line)
    }

    func scalar(_ text: Substring, line: Int) throws(YAMLError) -> YAMLNode {
        guard let first = text.first else { return YAMLNode(.null, line: line) }
        if first == "'" {
            guard text.count >= 2, text.last == "'" else { throw error(line, "unterminated 'quoted' scalar") }
            let inner = text.dropFirst().dropLast()
            return YAMLNode(.string(inner.replacingOccurrences("''", with: "'")), line: line)
        }
        if first == "\"" {
            guard text.count >= 2, text.last == "\"" else { throw error(line, "unterminated \"quoted\" scalar") }
            return YAMLNode(.string(try unescape(text.dropFirst().dropLast(), line: line)), line: line)
        }
        if "&*!|>%@`".contains(first) {
            throw error(line, "\"\(first)\" (anchors, aliases, tags, block scalars, directives) is not supported; quote the value")
        }
        return text == "~" || text == "null" || text == "Null" || text == "NULL" ? YAMLNode(.null, line: line) : YAMLNode(.plain(String(text)), line: line)
    }

    /// Undoes a "double-quoted" scalar's escapes, scalar by scalar (a combining mark after `\\"` must not hide the quote).
    func unescape(_ text: Substring, line: Int) throws(YAMLError) -> String {
        var result = String.UnicodeScalarView()
        var iterator = text.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            guard scalar == "\\" else { result.append(scalar); continue }
            switch iterator.next() {
            case "\\": result.append("\\")
            case "\"": result.append("\"")
            case "n": result.append("\n")
            case "t": result.append("\t")
            case "r": result.append("\r")
            case "0": result.append("\0")
            case "/": result.append("/")
            case let marker? where marker == "u" || marker == "U":
                var hex = ""
                for _ in 0..<(marker == "u" ? 4 : 8) { if let digit = iterator.next() { hex.unicodeScalars.append(digit) } }
                guard hex.count == (marker == "u" ? 4 : 8), hex.allSatisfy(\.isHexDigit), let code = UInt32(hex, radix: 16),
                      let decoded = Unicode.Scalar(code) else {
                    throw error(line, "bad \\\(marker) escape in a \"quoted\" scalar")
                }
                result.append(decoded)
            default: throw error(line, "unknown escape in a \"quoted\" scalar")
            }
        }
        return String(result)
    }
}

extension Substring {
    /// The text without leading and trailing spaces.
    public var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " } ?? endIndex
        let end = lastIndex { $0 != " " }.map { index(after: $0) } ?? start
        return self[start..<Swift.max(start, end)]
    }

    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[rest.startIndex..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
