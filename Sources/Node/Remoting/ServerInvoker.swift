import NIOCore
import Synchronization

/// Requests a server sends to a client on the client's own connection and whose answer it waits for (the
/// broker asking a consumer for GET_CONSUMER_RUNNING_INFO, RocketMQ's `Broker2Client.callClient`). Answers come
/// back on that connection as responses with the request's opaque; `RemotingServer` hands every response it
/// reads to `complete`.
///
/// **Thread:** any. At most `pendingMax` requests wait at once; past it `invoke` fails at once.
public final class ServerInvoker: Sendable {
    public static let pendingMax = 1_024
    private let nextOpaque = Atomic<Int32>(1 << 30)
    private let pending = Mutex<[Int32: EventLoopPromise<RemotingCommand>]>([:])

    public init() {}

    /// Sends `request` on `channel` and completes with the client's answer, or fails after `timeoutMillis`
    /// or when `pendingMax` requests wait already (both `RemotingError.timeout`; 0 ms for the second).
    public func invoke(_ channel: Channel, _ request: RemotingCommand, timeoutMillis: Int64) -> EventLoopFuture<RemotingCommand> {
        let promise = channel.eventLoop.makePromise(of: RemotingCommand.self)
        var request = request
        request.opaque = nextOpaque.wrappingAdd(1, ordering: .relaxed).oldValue & Int32.max
        request.flag &= ~RemotingCommand.responseFlag
        let opaque = request.opaque
        let client = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "client"
        let admitted = pending.withLock { table in
            guard table.count < Self.pendingMax else { return false }
            table[opaque] = promise
            return true
        }
        guard admitted else {
            promise.fail(RemotingError.timeout(address: client, code: request.code, millis: 0))
            return promise.futureResult
        }
        channel.eventLoop.scheduleTask(in: .milliseconds(timeoutMillis)) { [self] in
            take(opaque)?.fail(RemotingError.timeout(address: client, code: request.code, millis: timeoutMillis))
        }
        channel.writeAndFlush(request).whenFailure { [self] error in take(opaque)?.fail(error) }
        return promise.futureResult
    }

    /// Completes the request `response` answers; false when none waits (late, or not ours).
    @discardableResult
    public func complete(_ response: RemotingCommand) -> Bool {
        guard let promise = take(response.opaque) else { return false }
        promise.succeed(response)
        return true
    }

    private func take(_ opaque: Int32) -> EventLoopPromise<RemotingCommand>? {
        pending.withLock { $0.removeValue(forKey: opaque) }
    }
}
