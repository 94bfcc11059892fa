import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// Prometheus' text exposition format (0.0.4) on `GET /metrics`: before each scrape `collect` refreshes the
/// values read at scrape time (queue offsets, lag, disk), then the registry is written out. Anything else
/// answers 404; a request body is ignored.
///
/// **Thread:** `collect` runs on one of the group's event loops, once per scrape, off every message's path.
public final class MetricsServer: Sendable {
    public let channel: Channel

    /// Binds `host:port` (0 picks a free port; see `port`).
    public init(host: String, port: Int, group: EventLoopGroup, registry: PrometheusCollectorRegistry,
                collect: @escaping @Sendable () -> Void) async throws {
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry, collect: collect))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The port scrapers dial.
    public var port: Int { channel.localAddress?.port ?? 0 }

    public func close() async {
        try? await channel.close()
    }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let registry: PrometheusCollectorRegistry
    let collect: @Sendable () -> Void
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry, collect: @escaping @Sendable () -> Void) {
        self.registry = registry
        self.collect = collect
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        var body = context.channel.allocator.buffer(capacity: 0)
        let status: HTTPResponseStatus
        if request.method == .GET && (path == "/metrics" || path == "/") {
            collect()
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 << 10)
            registry.emit(into: &bytes)
            body.writeBytes(bytes)
            status = .ok
        } else {
            body.writeString("not found: GET /metrics serves Prometheus' text format\n")
            status = .notFound
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        let channel = context.channel
        if !keepAlive { done.futureResult.whenComplete { _ in channel.close(promise: nil) } }
    }
}

extension PrometheusCollectorRegistry {
    /// A gauge named `name` exactly (no unit suffix), with its help text.
    public func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A counter named `name` exactly (no unit suffix), with its help text.
    public func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
