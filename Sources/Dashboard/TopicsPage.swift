import Client
import Common
import Hummingbird

extension Dashboard {
    /// Every topic (system ones on request): its queues with min and max offsets, messages held; a form to create
    /// one and a button to delete each (refused unless writes are enabled).
    func topicsPage(note: String?, showSystem: Bool) async -> Response {
        let topics: [String]
        do { topics = try await admin.topicList() } catch {
            return page("Topics", active: "Topics", banner(note: note, error: "cannot list topics: \(error)"))
        }
        let clusters = Set(((try? await admin.clusterInfo()) ?? []).flatMap { [$0.cluster, $0.brokerName] })
        var rows: [[Cell]] = []
        for topic in topics where showSystem || !(Self.isSystemTopic(topic) || clusters.contains(topic)) {
            let stats = (try? await admin.topicStats(topic)) ?? []
            let queues = stats.map { "\(escape($0.queue.brokerName))/\($0.queue.queueID): \($0.minOffset)–\($0.maxOffset)" }
            let held = stats.reduce(Int64(0)) { $0 + $1.maxOffset - $1.minOffset }
            let delete = "<form class=\"inline\" method=\"post\" action=\"/topics/delete\"><input type=\"hidden\" name=\"topic\" value=\"\(escape(topic))\">"
                + "<button type=\"submit\"\(settings.writesEnabled ? "" : " disabled") onclick=\"return confirm('Delete topic?')\">delete</button></form>"
            rows.append([
                .markup("<a href=\"/messages?topic=\(urlEncode(topic))\">\(escape(topic))</a>"), .number(Int64(stats.count)),
                .markup(queues.joined(separator: "<br>")), .number(held), .markup(delete),
            ])
        }
        let create = """
            <h2>Create or update a topic</h2>
            <form method="post" action="/topics">
            <input name="topic" placeholder="topic" required> <input name="cluster" placeholder="cluster" value="DefaultCluster">
            <input name="queues" type="number" min="1" max="1024" value="4"> queues
            <button type="submit"\(settings.writesEnabled ? "" : " disabled")>create</button>
            \(settings.writesEnabled ? "" : "<small>(writes are disabled: start with --enable-writes)</small>")
            </form>
            """
        let toggle = showSystem ? "<a href=\"/topics\">hide system topics</a>" : "<a href=\"/topics?all=1\">show system topics</a>"
        let content = banner(note: note) + "<p>\(rows.count) topic(s). \(toggle)</p>"
            + table(["Topic", "Queues", "Queue: min–max offset", "Messages held", ""], rows, id: "topics") + create
        return page("Topics", active: "Topics", content)
    }

    static func isSystemTopic(_ topic: String) -> Bool {
        topic == TopicValidator.autoCreateTopicKeyTopic || topic.hasPrefix("RMQ_SYS_") || topic.hasPrefix("SCHEDULE_TOPIC")
            || topic.hasPrefix("%RETRY%") || topic.hasPrefix("%DLQ%") || topic == "SELF_TEST_TOPIC" || topic == "OFFSET_MOVED_EVENT"
    }

    func createTopic(_ form: [String: String]) async throws -> Response {
        if let refusal = writesRefusal { return refusal }
        let topic = form["topic"] ?? ""
        if let problem = TopicValidator.problem(with: topic) { return redirect("/topics", note: "not created: \(problem)") }
        guard let queues = Int(form["queues"] ?? ""), (1...1024).contains(queues) else {
            return redirect("/topics", note: "not created: queues must be 1...1024")
        }
        let cluster = (form["cluster"] ?? "").isEmpty ? "DefaultCluster" : form["cluster"]!
        do {
            let brokers = try await admin.updateTopic(topic, brokerAddr: nil, cluster: cluster, readQueueNums: queues, writeQueueNums: queues,
                                                      perm: .readWrite, order: false)
            return redirect("/topics", note: "created \(topic) with \(queues) queues on \(brokers.joined(separator: ", "))")
        } catch {
            return redirect("/topics", note: "not created: \(error)")
        }
    }

    func deleteTopic(_ form: [String: String]) async throws -> Response {
        if let refusal = writesRefusal { return refusal }
        let topic = form["topic"] ?? ""
        do {
            let brokers = try await admin.deleteTopic(topic, cluster: nil)
            return redirect("/topics", note: "deleted \(topic) from \(brokers.joined(separator: ", ")) and the NameServers")
        } catch {
            return redirect("/topics", note: "not deleted: \(error)")
        }
    }
}
