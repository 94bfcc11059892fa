import Hummingbird

/// Text made safe for HTML element content and quoted attribute values. Every value the dashboard shows that
/// came from a broker (topics, groups, keys, bodies, addresses) goes through here.
func escape(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count)
    for character in text.unicodeScalars {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.unicodeScalars.append(character)
        }
    }
    return escaped
}

/// Percent-encoding for a query-string value.
func urlEncode(_ text: String) -> String {
    var encoded = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            encoded.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            encoded += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
        }
    }
    return encoded
}

/// `application/x-www-form-urlencoded` (a POSTed form): `+` is a space, `%XX` a byte.
func formFields(_ body: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in body.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        fields[percentDecode(parts[0])] = parts.count > 1 ? percentDecode(parts[1]) : ""
    }
    return fields
}

func percentDecode(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var index = text.utf8.startIndex
    let utf8 = text.utf8
    while index < utf8.endIndex {
        let byte = utf8[index]
        if byte == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else if byte == UInt8(ascii: "%"), let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex),
                  let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
                  let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16) {
            bytes.append(value)
            index = low
        } else {
            bytes.append(byte)
        }
        index = utf8.index(after: index)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A whole page: the navigation, a title, the content (already escaped where it holds data).
func page(_ title: String, active: String, _ content: String, script: String = "") -> Response {
    let links = [("/", "Cluster"), ("/topics", "Topics"), ("/groups", "Consumer groups"), ("/messages", "Messages")]
    let nav = links.map { "<a href=\"\($0.0)\"\($0.1 == active ? " class=\"active\"" : "")>\($0.1)</a>" }.joined(separator: " ")
    let html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) · RocketMQ dashboard</title>
        <style>
        body { font-family: sans-serif; margin: 0; color: #222; }
        header { background: #1d3557; color: #fff; padding: 10px 20px; }
        header a { color: #cfe3ff; margin-right: 16px; text-decoration: none; } header a.active { color: #fff; font-weight: bold; }
        main { padding: 16px 20px; }
        table { border-collapse: collapse; margin: 8px 0 20px; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
        th { background: #eef2f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        pre.body { background: #f6f6f6; padding: 6px; max-width: 900px; white-space: pre-wrap; word-break: break-all; }
        .note { background: #fff7d6; padding: 6px 10px; border: 1px solid #e6d27a; } .error { background: #ffe3e3; padding: 6px 10px; }
        form.inline { display: inline; } input, select, button { margin: 2px; }
        </style></head>
        <body><header><b>RocketMQ dashboard</b> &nbsp; \(nav)</header><main><h1>\(escape(title))</h1>
        \(content)
        </main>\(script.isEmpty ? "" : "<script>\(script)</script>")</body></html>
        """
    return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
}

/// A table: a header row, then rows of cells already escaped (`num` cells right-aligned).
func table(_ headers: [String], _ rows: [[Cell]], id: String = "") -> String {
    let head = headers.map { "<th>\(escape($0))</th>" }.joined()
    let body = rows.map { row in "<tr>" + row.map(\.html).joined() + "</tr>" }.joined(separator: "\n")
    return "<table\(id.isEmpty ? "" : " id=\"\(id)\"")><tr>\(head)</tr>\n\(body)</table>"
}

/// One table cell: text (escaped here), a number, or markup the caller built from escaped parts.
enum Cell {
    case text(String)
    case number(Int64)
    case markup(String)

    var html: String {
        switch self {
        case .text(let text): "<td>\(escape(text))</td>"
        case .number(let value): "<td class=\"num\">\(value)</td>"
        case .markup(let markup): "<td>\(markup)</td>"
        }
    }
}

/// See-other to `path` with a note shown on the next page.
func redirect(_ path: String, note: String) -> Response {
    let separator = path.contains("?") ? "&" : "?"
    return Response(status: .seeOther, headers: [.location: path + separator + "note=" + urlEncode(note)])
}

/// The note a redirect carried, or an error, as a banner.
func banner(note: String?, error: String? = nil) -> String {
    var html = ""
    if let note, !note.isEmpty { html += "<p class=\"note\">\(escape(note))</p>" }
    if let error, !error.isEmpty { html += "<p class=\"error\">\(escape(error))</p>" }
    return html
}
