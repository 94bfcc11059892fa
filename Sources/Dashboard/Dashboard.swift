import Client
import Common
import Hummingbird
import Logging
import NIOCore
import Observability

/// What `mqdashboard` serves and against which cluster.
public struct DashboardSettings: Sendable {
    public var namesrvAddr: String
    public var host = "127.0.0.1"
    public var port = 8080
    /// Creating and deleting topics and resetting offsets (refused unless set).
    public var writesEnabled = false

    public init(namesrvAddr: String) { self.namesrvAddr = namesrvAddr }
}

/// A web console in the spirit of rocketmq-dashboard, server-rendered over the Swift client's admin calls:
/// cluster (roles, TPS, disk, HA lag, a live TPS chart), topics (queues, offsets, create, delete), consumer groups
/// (members, lag per queue, reset), and message search by key or id with the body shown.
public final class Dashboard: Sendable {
    let settings: DashboardSettings
    let admin: Admin
    let sampler: TPSSampler

    public init(settings: DashboardSettings) {
        self.settings = settings
        admin = Admin(namesrvAddr: settings.namesrvAddr, timeoutMillis: 3_000)
        sampler = TPSSampler(admin: admin)
    }

    /// Serves until SIGTERM/SIGINT (or the launcher named by `MQ_EXIT_WITH_PARENT` goes), then stops gracefully.
    /// `onRunning` gets the bound port (the chosen one for port 0).
    public func run(logger: Logger, onRunning: @escaping @Sendable (Int) -> Void) async throws {
        let application = Application(
            router: makeRouter(), configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "mqdashboard"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) }, logger: logger)
        let sampling = Task { await sampler.run() }
        defer { sampling.cancel() }
        try await RoleLifecycle.run([application], logger: logger)
        await admin.shutdown()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { request, _ in await self.clusterPage(note: request.uri.queryParameters["note"].map(String.init)) }
        router.get("/api/tps") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: self.sampler.pointsJSON)))
        }
        router.get("/topics") { request, _ in
            await self.topicsPage(note: request.uri.queryParameters["note"].map(String.init), showSystem: request.uri.queryParameters["all"] == "1")
        }
        router.post("/topics") { request, _ in try await self.createTopic(try await Self.form(request)) }
        router.post("/topics/delete") { request, _ in try await self.deleteTopic(try await Self.form(request)) }
        router.get("/groups") { request, _ in await self.groupsPage(note: request.uri.queryParameters["note"].map(String.init)) }
        router.post("/groups/reset") { request, _ in try await self.resetOffset(try await Self.form(request)) }
        router.get("/messages") { request, _ in
            let query = request.uri.queryParameters
            return await self.messagesPage(topic: query["topic"].map(String.init) ?? "", key: query["key"].map(String.init) ?? "",
                                           id: query["id"].map(String.init) ?? "")
        }
        return router
    }

    /// A POSTed form (at most 64 KiB).
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let body = try await request.collectBody(upTo: 64 << 10)
        return formFields(String(buffer: body))
    }

    /// The refusal a write gets when the dashboard was started without `--enable-writes`.
    var writesRefusal: Response? {
        settings.writesEnabled ? nil : Response(
            status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "writes are disabled: start mqdashboard with --enable-writes\n")))
    }
}
