import Client
import Common
import Hummingbird

extension Dashboard {
    /// Every consumer group with committed offsets: its members online, lag per queue and in total, and a form
    /// to reset its offsets of a topic to the earliest or latest message.
    func groupsPage(note: String?) async -> Response {
        let groups: [(group: String, topics: [String])]
        do { groups = try await admin.consumerGroups() } catch {
            return page("Consumer groups", active: "Consumer groups", banner(note: note, error: "cannot list consumer groups: \(error)"))
        }
        var content = banner(note: note) + "<p>\(groups.count) consumer group(s).</p>"
        for (group, topics) in groups {
            let members = (try? await admin.consumerIDs(group: group)) ?? []
            let progress = (try? await admin.consumeProgress(group: group)) ?? []
            let rows: [[Cell]] = progress.map {
                [.text($0.queue.topic), .text($0.queue.brokerName), .number(Int64($0.queue.queueID)), .number($0.brokerOffset),
                 .number($0.consumerOffset), .markup("<span class=\"lag\">\($0.diff)</span>")]
            }
            let total = progress.reduce(Int64(0)) { $0 + $1.diff }
            let options = topics.map { "<option>\(escape($0))</option>" }.joined()
            let disabled = settings.writesEnabled ? "" : " disabled"
            content += """
                <h2 class="group">\(escape(group))</h2>
                <p>Members online: \(members.isEmpty ? "none" : members.map(escape).joined(separator: ", ")). Total lag: <b class="total-lag">\(total)</b></p>
                \(table(["Topic", "Broker", "Queue", "Broker offset", "Consumer offset", "Lag"], rows))
                <form method="post" action="/groups/reset"><input type="hidden" name="group" value="\(escape(group))">
                Reset offsets of <select name="topic">\(options)</select> to <select name="to"><option>latest</option><option>earliest</option></select>
                <button type="submit"\(disabled)>reset</button> <small>(stop the group's consumers first: running ones commit their own offsets)</small></form>
                """
        }
        return page("Consumer groups", active: "Consumer groups", content)
    }

    func resetOffset(_ form: [String: String]) async throws -> Response {
        if let refusal = writesRefusal { return refusal }
        guard let group = form["group"], let topic = form["topic"], let target = Admin.ResetTarget(rawValue: form["to"] ?? "") else {
            return redirect("/groups", note: "not reset: group, topic and to (earliest or latest) are needed")
        }
        do {
            let queues = try await admin.resetOffset(group: group, topic: topic, to: target)
            return redirect("/groups", note: "reset \(group) on \(topic) to \(target.rawValue): \(queues.count) queue(s)")
        } catch {
            return redirect("/groups", note: "not reset: \(error)")
        }
    }
}
