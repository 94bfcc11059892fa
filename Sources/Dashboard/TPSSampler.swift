import Client
import Common
import Synchronization

/// Put and get TPS per broker and for the whole cluster, from each broker's runtime totals
/// (`msgPutTotalTodayNow`, `msgGetTotalTodayNow`) read once a second: the numbers the cluster page shows and the
/// points of its live chart (the last `pointsMax` seconds).
final class TPSSampler: Sendable {
    struct Point: Sendable {
        var millis: Int64
        var put: Double
        var get: Double
    }
    private struct State {
        var last: [String: (millis: Int64, put: Int64, get: Int64)] = [:]
        var perBroker: [String: (put: Double, get: Double)] = [:]
        var points: [Point] = []
    }
    static let pointsMax = 300
    private let state = Mutex(State())
    let admin: Admin

    init(admin: Admin) { self.admin = admin }

    /// Samples every second until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            await sampleOnce()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func sampleOnce() async {
        guard let brokers = try? await admin.clusterInfo() else { return }
        var totals: [String: (millis: Int64, put: Int64, get: Int64)] = [:]
        for broker in brokers {
            guard let info = try? await admin.brokerRuntimeInfo(broker.address) else { continue }
            let table = Dictionary(info, uniquingKeysWith: { first, _ in first })
            totals[broker.address] = (currentTimeMillis(), Int64(table["msgPutTotalTodayNow"] ?? "") ?? 0,
                                      Int64(table["msgGetTotalTodayNow"] ?? "") ?? 0)
        }
        state.withLock { state in
            var point = Point(millis: currentTimeMillis(), put: 0, get: 0)
            var perBroker: [String: (put: Double, get: Double)] = [:]
            for (address, now) in totals {
                guard let before = state.last[address], now.millis > before.millis else { continue }
                let seconds = Double(now.millis - before.millis) / 1000
                let rates = (put: Double(max(0, now.put - before.put)) / seconds, get: Double(max(0, now.get - before.get)) / seconds)
                perBroker[address] = rates
                point.put += rates.put
                point.get += rates.get
            }
            state.last = totals
            state.perBroker = perBroker
            state.points.append(point)
            if state.points.count > Self.pointsMax { state.points.removeFirst(state.points.count - Self.pointsMax) }
        }
    }

    /// The latest TPS of a broker (zeros before two samples).
    func rates(of address: String) -> (put: Double, get: Double) { state.withLock { $0.perBroker[address] ?? (0, 0) } }

    /// The chart's points as JSON: `[{"t":millis,"put":x,"get":y},...]`.
    var pointsJSON: String {
        let points = state.withLock { $0.points }
        return "[" + points.map { "{\"t\":\($0.millis),\"put\":\(oneDecimal($0.put)),\"get\":\(oneDecimal($0.get))}" }
            .joined(separator: ",") + "]"
    }
}

/// `12.3`: one decimal, no exponent.
func oneDecimal(_ value: Double) -> String {
    let tenths = Int64((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}
