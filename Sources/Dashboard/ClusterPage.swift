import Client
import Common
import Hummingbird

extension Dashboard {
    /// Every broker: cluster, name, id, address, role, put/get TPS, messages today, disk, commit-log size and
    /// replication (a master's slaves and their lag, a slave's master link), then the live TPS chart.
    func clusterPage(note: String?) async -> Response {
        let brokers: [Admin.BrokerEntry]
        do { brokers = try await admin.clusterInfo() } catch {
            return page("Cluster", active: "Cluster", banner(note: note, error: "cannot read the cluster from \(settings.namesrvAddr): \(error)"))
        }
        var rows: [[Cell]] = []
        for broker in brokers {
            let info = Dictionary((try? await admin.brokerRuntimeInfo(broker.address)) ?? [], uniquingKeysWith: { first, _ in first })
            let tps = sampler.rates(of: broker.address)
            let size = (Int64(info["commitLogMaxOffset"] ?? "") ?? 0) - (Int64(info["commitLogMinOffset"] ?? "") ?? 0)
            rows.append([
                .text(broker.cluster), .text(broker.brokerName), .number(broker.brokerID), .text(broker.address),
                .text(info["brokerRole"] ?? "?"), .markup("<span class=\"put-tps\">\(oneDecimal(tps.put))</span>"),
                .text(oneDecimal(tps.get)), .number(Int64(info["msgPutTotalTodayNow"] ?? "") ?? 0),
                .number(Int64(info["msgGetTotalTodayNow"] ?? "") ?? 0), .text(info["commitLogDirCapacity"] ?? "?"),
                .number(size), .markup(await replication(broker.address)),
            ])
        }
        let content = banner(note: note)
            + "<p>NameServer \(escape(settings.namesrvAddr)): \(brokers.count) broker(s).</p>"
            + table(["Cluster", "Broker", "ID", "Address", "Role", "Put TPS", "Get TPS", "Put today", "Get today", "Disk",
                     "Commit log bytes", "Replication"], rows, id: "brokers")
            + "<h2>Live TPS (all brokers)</h2><canvas id=\"tps\" width=\"900\" height=\"220\" style=\"border:1px solid #ccc\"></canvas>"
            + "<p id=\"tps-now\">waiting for samples…</p>"
        return page("Cluster", active: "Cluster", content, script: Self.chartScript)
    }

    /// A master's slaves (address, bytes behind, ms behind, in sync), a slave's link, or a DLedger member's state.
    func replication(_ address: String) async -> String {
        if let dledger = try? await admin.dledgerStatus(address, timeoutMillis: 1_000) {
            return escape("DLedger \(dledger.group) \(dledger.selfId): \(dledger.role), term \(dledger.term), commit \(dledger.committedIndex)")
        }
        guard let ha = try? await admin.haStatus(address) else { return "?" }
        if let client = ha.haClientRuntimeInfo {
            return escape("slave of \(client.masterAddr) (\(client.connected ? "connected" : "disconnected"))")
        }
        guard ha.master, !ha.haConnectionInfo.isEmpty else { return "no slave" }
        return ha.haConnectionInfo.map {
            escape("\($0.addr): \($0.diff) bytes, \($0.lagMillis) ms behind\($0.inSync ? "" : " (not in sync)")")
        }.joined(separator: "<br>")
    }

    /// Polls /api/tps every second and draws put (blue) and get (orange) TPS over the last five minutes.
    static let chartScript = """
        async function draw() {
          let points = [];
          try { points = await (await fetch('/api/tps')).json(); } catch (e) { return; }
          const canvas = document.getElementById('tps'), g = canvas.getContext('2d');
          g.clearRect(0, 0, canvas.width, canvas.height);
          if (points.length === 0) return;
          const max = Math.max(1, ...points.map(p => Math.max(p.put, p.get)));
          g.fillStyle = '#555'; g.font = '12px sans-serif'; g.fillText(max.toFixed(1) + ' msg/s', 4, 14);
          for (const [key, color] of [['put', '#1f77b4'], ['get', '#ff7f0e']]) {
            g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
            points.forEach((p, i) => {
              const x = 40 + i * (canvas.width - 50) / Math.max(1, points.length - 1);
              const y = canvas.height - 10 - p[key] / max * (canvas.height - 30);
              if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
            });
            g.stroke();
          }
          const last = points[points.length - 1];
          document.getElementById('tps-now').textContent = 'put ' + last.put + ' msg/s, get ' + last.get + ' msg/s (' + points.length + ' samples)';
        }
        draw(); setInterval(draw, 1000);
        """
}
