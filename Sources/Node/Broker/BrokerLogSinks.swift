/// Where each part of a broker logs: the controller, managers and processors (`broker`); the store, consume
/// queues, index and master/slave HA (`store`); the client port (`remoting`); the DLedger group (`dledger`).
/// `mqbroker` points them at swift-log loggers writing RocketMQ's files (broker.log, store.log, remoting.log,
/// dledger.log); the store and replication modules below see only these closures.
public struct BrokerLogSinks: Sendable {
    public var broker: @Sendable (String) -> Void
    public var store: @Sendable (String) -> Void
    public var remoting: @Sendable (String) -> Void
    public var dledger: @Sendable (String) -> Void

    public init(broker: @escaping @Sendable (String) -> Void, store: @escaping @Sendable (String) -> Void,
                remoting: @escaping @Sendable (String) -> Void, dledger: @escaping @Sendable (String) -> Void) {
        self.broker = broker
        self.store = store
        self.remoting = remoting
        self.dledger = dledger
    }

    /// Everything to one sink.
    public init(all: @escaping @Sendable (String) -> Void) {
        self.init(broker: all, store: all, remoting: all, dledger: all)
    }
}
