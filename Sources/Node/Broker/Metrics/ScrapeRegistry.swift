import Observability
import Prometheus

/// Values read at scrape time, written into a Prometheus registry: gauges are set; counters (totals the broker
/// already keeps, such as queue offsets) move by what they grew since the last scrape. A label set not
/// refreshed in a round (a deleted topic, a consumer group gone) is unregistered at its end.
///
/// **Thread:** one scrape at a time (the caller holds the collector's lock).
final class ScrapeRegistry {
    let registry: PrometheusCollectorRegistry
    private struct Key: Hashable {
        var name: String
        var labels: [String]
    }
    private var gauges: [Key: Gauge] = [:]
    private var counters: [Key: (counter: Counter, last: Double)] = [:]
    private var seen: Set<Key> = []
    private let help: [String: String]

    init(registry: PrometheusCollectorRegistry, help: [String: String]) {
        self.registry = registry
        self.help = help
    }

    private func key(_ name: String, _ labels: [(String, String)]) -> Key {
        Key(name: name, labels: labels.flatMap { [$0.0, $0.1] })
    }

    func gauge(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        let key = key(name, labels)
        seen.insert(key)
        if let gauge = gauges[key] { return gauge.set(value) }
        let gauge = registry.gauge(name, labels: labels, help: help[name] ?? name)
        gauges[key] = gauge
        gauge.set(value)
    }

    /// A counter that shows `total`; a total that went down (a restarted source) restarts the counter's delta.
    func counter(_ name: String, _ labels: [(String, String)] = [], total: Double) {
        let key = key(name, labels)
        seen.insert(key)
        if let (counter, last) = counters[key] {
            if total > last { counter.increment(by: total - last) }
            counters[key] = (counter, max(last, total))
            return
        }
        let counter = registry.counter(name, labels: labels, help: help[name] ?? name)
        if total > 0 { counter.increment(by: total) }
        counters[key] = (counter, total)
    }

    /// Ends a round: what was not refreshed goes.
    func sweep() {
        for (key, gauge) in gauges where !seen.contains(key) {
            registry.unregisterGauge(gauge)
            gauges[key] = nil
        }
        for (key, entry) in counters where !seen.contains(key) {
            registry.unregisterCounter(entry.counter)
            counters[key] = nil
        }
        seen.removeAll(keepingCapacity: true)
    }
}
