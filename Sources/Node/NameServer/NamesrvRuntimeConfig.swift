import Common
import Synchronization

/// The NameServer's settings while it runs (GET_NAMESRV_CONFIG / UPDATE_NAMESRV_CONFIG). Two keys change at
/// once: `orderMessageEnable` (read by every route request) and `brokerChannelExpiredTime` (read by every liveness
/// scan). The others only take effect at start, so an update naming one is refused; the config paths are refused as
/// RocketMQ refuses them. Updates live in memory: a restart reads `namesrv.properties` again.
///
/// **Thread:** any.
public final class NamesrvRuntimeConfig: Sendable {
    private let config: Mutex<NamesrvConfig>

    public init(_ config: NamesrvConfig) { self.config = Mutex(config) }

    public var current: NamesrvConfig { config.withLock { $0 } }

    /// Every key and its value now, sorted by key.
    public func properties() -> [(String, String)] {
        let config = current
        return [
            ("brokerChannelExpiredTime", "\(config.brokerChannelExpiredTimeMillis)"), ("listenPort", "\(config.listenPort)"),
            ("orderMessageEnable", "\(config.orderMessageEnable)"),
            ("scanNotActiveBrokerInterval", "\(config.scanNotActiveBrokerIntervalMillis)"),
            ("serverChannelMaxIdleTimeSeconds", "\(config.connectionLimits.idleTimeoutMillis / 1000)"),
        ]
    }

    /// Why an update was refused (nothing of it applied).
    public enum Refusal: Error, Sendable {
        case configPath
        case invalid(String)
    }

    /// Applies `pairs` all or none.
    public func update(_ pairs: [(String, String)]) throws(Refusal) {
        var updated = current
        for (key, value) in pairs {
            switch key {
            case "kvConfigPath", "configStorePath": throw .configPath
            case "orderMessageEnable":
                guard value == "true" || value == "false" else { throw .invalid("orderMessageEnable must be true or false, not \(value)") }
                updated.orderMessageEnable = value == "true"
            case "brokerChannelExpiredTime":
                guard let millis = Int64(value), (1_000...86_400_000).contains(millis) else {
                    throw .invalid("brokerChannelExpiredTime must be 1000...86400000 ms, not \(value)")
                }
                updated.brokerChannelExpiredTimeMillis = millis
            case "listenPort", "scanNotActiveBrokerInterval", "serverChannelMaxIdleTimeSeconds":
                throw .invalid("\(key) takes effect only at start: set it in namesrv.properties")
            default:
                throw .invalid("\(key) is not a NameServer setting (runtime keys: orderMessageEnable, brokerChannelExpiredTime)")
            }
        }
        config.withLock { $0 = updated }
    }
}
