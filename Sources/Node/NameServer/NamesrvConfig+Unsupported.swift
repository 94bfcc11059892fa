import Common

extension NamesrvConfig {
    /// RocketMQ's NameServer keys (4.9's NamesrvConfig and NettyServerConfig fields, and 5.x's thread pool sizes)
    /// that `mqnamesrv` does not take: a `namesrv.properties` line with one is warned about, with file and line, as
    /// supported by RocketMQ but not here.
    public static let unsupportedKeys = UnsupportedKeys(names: [
        "clusterTest", "configStorePath", "kvConfigPath", "productEnvName", "rocketmqHome",
        "serverAsyncSemaphoreValue", "serverCallbackExecutorThreads", "serverOnewaySemaphoreValue",
        "serverPooledByteBufAllocatorEnable", "serverSelectorThreads", "serverSocketBacklog", "serverSocketRcvBufSize",
        "serverSocketSndBufSize", "serverWorkerThreads", "useEpollNativeSelector", "writeBufferHighWaterMark",
        "writeBufferLowWaterMark", "clientRequestThreadPoolNums", "defaultThreadPoolNums",
    ], harmless: ["clusterTest": "false"], role: "NameServer")

    /// Every key `mqnamesrv` reads with its effective value, as `mqnamesrv -p` prints them (`key=value`).
    public var properties: [(key: String, value: String)] {
        [
            ("listenPort", "\(listenPort)"), ("scanNotActiveBrokerInterval", "\(scanNotActiveBrokerIntervalMillis)"),
            ("brokerChannelExpiredTime", "\(brokerChannelExpiredTimeMillis)"),
            ("orderMessageEnable", "\(orderMessageEnable)"),
            ("serverChannelMaxIdleTimeSeconds", "\(connectionLimits.idleTimeoutMillis / 1000)"),
            ("metricsExporterType", metrics.enabled ? "PROM" : "DISABLE"), ("metricsPromExporterHost", metrics.host),
            ("metricsPromExporterPort", "\(metrics.port)"),
        ]
    }
}
