import Common
import Logging
import ServiceLifecycle

/// A running part of a role (the broker, its metrics endpoint) as a swift-service-lifecycle service: it runs
/// until the group shuts down gracefully, then stops what it started (flush, unregister, close).
public struct StoppingService: Service, CustomStringConvertible {
    public let description: String
    let stop: @Sendable () async -> Void

    public init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        description = name
        self.stop = stop
    }

    public func run() async throws {
        try? await gracefulShutdown()  // returns at graceful shutdown; throws when cancelled: stop either way
        await stop()
    }
}

/// SIGTERM, SIGINT or a launcher gone (`MQ_EXIT_WITH_PARENT`), as `TerminationSignal` catches them from the first
/// line of `main`, turned into the group's graceful shutdown. ServiceLifecycle's own signal handling is not
/// used: a signal that arrives while the role is still starting must be remembered, and it is only once.
struct TerminationSignalService: Service, CustomStringConvertible {
    var description: String { "termination-signal" }

    func run() async {
        let signal = TerminationSignal.install()
        await withTaskCancellationHandler { await signal.wait() } onCancel: { signal.trigger() }
    }
}

/// Runs a role's services as one `ServiceGroup` until a termination signal, then shuts them down gracefully in
/// reverse order (the last one given stops first), each after the one started after it has stopped.
public enum RoleLifecycle {
    public static func run(_ services: [any Service], logger: Logger) async throws {
        var configurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        configurations.append(.init(service: TerminationSignalService(), successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: configurations, logger: logger))
        try await group.run()
    }
}
