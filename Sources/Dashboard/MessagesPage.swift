import Client
import Common
import Hummingbird

extension Dashboard {
    /// Message search: by topic and key (KEYS or the client's unique id), or by offset message id; each found
    /// message with its ids, queue, tags, keys, properties, times and body (escaped, shown as UTF-8).
    func messagesPage(topic: String, key: String, id: String) async -> Response {
        var content = """
            <form method="get" action="/messages">By key: <input name="topic" placeholder="topic" value="\(escape(topic))">
            <input name="key" placeholder="key" value="\(escape(key))"> <button type="submit">search</button></form>
            <form method="get" action="/messages">By message id: <input name="id" size="40" placeholder="offset message id" value="\(escape(id))">
            <button type="submit">look up</button></form>
            """
        var found: [MessageExt] = []
        var failure: String?
        if !id.isEmpty {
            do { found = [try await admin.viewMessage(offsetMsgID: id)] } catch { failure = "no message \(id): \(error)" }
        } else if !topic.isEmpty && !key.isEmpty {
            do { found = try await admin.queryMessage(topic: topic, key: key) } catch { failure = "search failed: \(error)" }
            if found.isEmpty && failure == nil { failure = "no message of \(topic) with key \(key)" }
        }
        content += banner(note: nil, error: failure)
        if !found.isEmpty { content += "<p>\(found.count) message(s).</p>" + found.map(Self.card).joined(separator: "\n") }
        return page("Messages", active: "Messages", content)
    }

    /// One message: its fields as a two-column table, then its body.
    static func card(_ message: MessageExt) -> String {
        let properties = message.properties.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let fields: [[Cell]] = [
            [.text("Message ID"), .text(message.msgID)],
            [.text("Offset message ID"),
             .markup("<a href=\"/messages?id=\(urlEncode(message.offsetMsgID))\">\(escape(message.offsetMsgID))</a>")],
            [.text("Topic / queue / offset"), .text("\(message.topic) / \(message.brokerName)/\(message.queueID) / \(message.queueOffset)")],
            [.text("Tags"), .text(message.tags ?? "")], [.text("Keys"), .text(message.keys.joined(separator: " "))],
            [.text("Properties"), .text(properties)], [.text("Stored"), .text(Self.time(message.storeTimestamp))],
            [.text("Body (\(message.body.count) bytes)"), .markup("<pre class=\"body\">\(escape(message.bodyString))</pre>")],
        ]
        return "<div class=\"message\">" + table(["Field", "Value"], fields) + "</div>"
    }

    /// `2026-11-30 02:30:00.123` (UTC).
    static func time(_ millis: Int64) -> String {
        let days = millis / 86_400_000
        let inDay = millis % 86_400_000
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int = 2) -> String {
            String(repeating: "0", count: max(0, width - String(value).count)) + String(value)
        }
        return "\(year)-\(pad(month))-\(pad(day)) \(pad(inDay / 3_600_000)):\(pad(inDay / 60_000 % 60)):\(pad(inDay / 1000 % 60)).\(pad(inDay % 1000, 3)) UTC"
    }
}
