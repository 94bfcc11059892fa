import Synchronization

/// The NameServer's key-value settings by namespace (RocketMQ's `KVConfigManager`, kept in memory).
///
/// **Thread:** any.
public final class KVConfigManager: Sendable {
    private let table = Mutex<[String: [String: String]]>([:])

    public init() {}

    public func put(namespace: String, key: String, value: String) { table.withLock { $0[namespace, default: [:]][key] = value } }
    public func get(namespace: String, key: String) -> String? { table.withLock { $0[namespace]?[key] } }
    public func delete(namespace: String, key: String) { table.withLock { _ = $0[namespace]?.removeValue(forKey: key) } }
    public func list(namespace: String) -> [String: String]? { table.withLock { $0[namespace] } }
}
