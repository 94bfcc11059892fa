import CommitLog
import NIOCore
import NIOPosix
import Raft
import Remoting
import Replication
import Synchronization

/// The DLedger members' transport on the remoting frames: each member serves its `dLegerPeers` port
/// (`DLedgerPeerProcessor`) and keeps one outbound connection per peer, on which the driver writes one-way
/// DLEDGER_RAFT_MESSAGES frames straight from its thread (NIO orders the writes). Nothing waits for a peer: frames
/// sent while a connection is being made wait for it (at most `pendingFramesMax`; a follower's first vote request
/// to a peer it never talked to must not be lost, or an election takes a timeout longer), and while a peer is
/// unreachable, or its connection holds `writeBufferBytesMax` unsent, frames are dropped and Raft resends what
/// matters. Reconnection is tried at most every `reconnectMillis`.
final class DLedgerPeerTransport: DLedgerTransport, Sendable {
    let group: EventLoopGroup
    let log: @Sendable (String) -> Void
    private let links = Mutex<[String: PeerLink]>([:])
    /// A batch is cut into frames of about this many bytes (the peer's decoder accepts `frameBytesMax`).
    static let frameBytesTarget = 4 << 20
    static let frameBytesMax = 96 << 20
    static let writeBufferBytesMax = 32 << 20
    static let reconnectMillis: UInt64 = 100
    static let pendingFramesMax = 256

    init(group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) {
        self.group = group
        self.log = log
    }

    func send(_ messages: [RaftMessage], group groupName: String, to peer: DLedgerPeer) {
        link(to: peer).send(Self.frames(messages, group: groupName))
    }

    /// Connects to `peer` now, before the first message (a vote) needs the connection.
    func prepare(_ peer: DLedgerPeer) {
        link(to: peer).send([])
    }

    private func link(to peer: DLedgerPeer) -> PeerLink {
        links.withLock { links in
            if let link = links[peer.address] { return link }
            let link = PeerLink(address: peer.address, group: group, log: log)
            links[peer.address] = link
            return link
        }
    }

    /// One-way commands carrying `messages`, cut so that each stays near `frameBytesTarget`.
    static func frames(_ messages: [RaftMessage], group: String) -> [RemotingCommand] {
        var commands: [RemotingCommand] = []
        var start = 0
        while start < messages.count {
            var end = start
            var bytes = 0
            while end < messages.count && (end == start || bytes + estimatedSize(messages[end]) <= frameBytesTarget) {
                bytes += estimatedSize(messages[end])
                end += 1
            }
            var body = ByteBufferAllocator().buffer(capacity: bytes + 64)
            RaftMessageCodec.encode(Array(messages[start..<end]), group: group, into: &body)
            commands.append(RemotingCommand(code: RequestCode.dledgerRaftMessages, opaque: 0, flag: RemotingCommand.onewayFlag,
                                            body: body, serializeType: .rocketmq))
            start = end
        }
        return commands
    }

    static func estimatedSize(_ message: RaftMessage) -> Int {
        guard case .append(let request) = message.body else { return 48 }
        return request.entries.reduce(64) { $0 + 32 + $1.payload.count }
    }

    func close() async {
        let all = links.withLock { links -> [PeerLink] in
            defer { links.removeAll() }
            return Array(links.values)
        }
        for link in all { await link.close() }
    }
}

/// One outbound connection to a peer, (re)connected lazily.
final class PeerLink: Sendable {
    let address: String
    let group: EventLoopGroup
    let log: @Sendable (String) -> Void
    private struct State {
        var channel: Channel?
        var connecting = false
        var nextAttemptNanos: UInt64 = 0
        var closed = false
        var failuresLogged = 0
        /// Frames sent while connecting, written once connected.
        var pending: [RemotingCommand] = []
    }
    private let state = Mutex(State())

    init(address: String, group: EventLoopGroup, log: @escaping @Sendable (String) -> Void) {
        self.address = address
        self.group = group
        self.log = log
    }

    /// Writes the frames if the connection is up and not backed up; otherwise drops them (and connects).
    func send(_ commands: [RemotingCommand]) {
        let now = monotonicNanos()
        let (channel, connect) = state.withLock { state -> (Channel?, Bool) in
            if state.closed { return (nil, false) }
            if let channel = state.channel, channel.isActive { return (channel, false) }
            if state.connecting || now >= state.nextAttemptNanos {
                state.pending.append(contentsOf: commands.prefix(DLedgerPeerTransport.pendingFramesMax - state.pending.count))
            }
            guard !state.connecting, now >= state.nextAttemptNanos else { return (nil, false) }
            state.connecting = true
            return (nil, true)
        }
        if connect { self.connect() }
        guard let channel, channel.isWritable else { return }
        for command in commands { channel.write(command, promise: nil) }
        channel.flush()
    }

    private func connect() {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            log("dledger: bad peer address \(address)")
            return
        }
        let host = String(address[..<colon])
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(low: DLedgerPeerTransport.writeBufferBytesMax / 2,
                                                                  high: DLedgerPeerTransport.writeBufferBytesMax)
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: watermark)
            .connectTimeout(.milliseconds(500))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([MessageToByteHandler(RemotingFrameEncoder())])
                }
            }
            .connect(host: host, port: port)
            .whenComplete { [self] result in connected(result) }
    }

    private func connected(_ result: Result<Channel, Error>) {
        let (keep, failure, pending): (Bool, String?, [RemotingCommand]) = state.withLock { state in
            state.connecting = false
            defer { state.pending.removeAll() }
            switch result {
            case .success(let channel):
                if state.closed { return (false, nil, []) }
                state.channel = channel
                state.failuresLogged = 0
                return (true, nil, state.pending)
            case .failure(let error):
                state.nextAttemptNanos = monotonicNanos() + DLedgerPeerTransport.reconnectMillis * 1_000_000
                state.failuresLogged += 1
                // The first failure and then one in a hundred: a peer down for minutes must not flood the log.
                return (false, state.failuresLogged % 100 == 1 ? "\(error)" : nil, [])
            }
        }
        if let failure { log("dledger: cannot reach peer \(address): \(failure)") }
        guard case .success(let channel) = result else { return }
        guard keep else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in if state.channel === channel { state.channel = nil } }
        }
        for command in pending { channel.write(command, promise: nil) }
        if !pending.isEmpty { channel.flush() }
    }

    func close() async {
        let channel = state.withLock { state -> Channel? in
            state.closed = true
            defer { state.channel = nil }
            return state.channel
        }
        try? await channel?.close()
    }
}

/// Answers the DLedger port: Raft message batches go to the member's driver; anything else is refused.
final class DLedgerPeerProcessor: RemotingProcessor {
    let server: DLedgerServer
    let log: @Sendable (String) -> Void
    private let badBatches = Atomic<Int>(0)

    init(server: DLedgerServer, log: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.log = log
    }

    func process(_ request: RemotingCommand, context: RequestContext) -> EventLoopFuture<RemotingCommand?> {
        guard request.code == RequestCode.dledgerRaftMessages, let body = request.body else {
            return context.eventLoop.makeSucceededFuture(.response(to: request, code: ResponseCode.requestCodeNotSupported,
                                                                   remark: "the DLedger port answers request \(RequestCode.dledgerRaftMessages) only"))
        }
        do { try server.receive(body) } catch {
            // One line per hundred bad batches: a misconfigured peer must not flood the log.
            if badBatches.wrappingAdd(1, ordering: .relaxed).oldValue % 100 == 0 {
                log("dledger: dropped a batch from \(context.remoteAddress): \(error)")
            }
        }
        return context.eventLoop.makeSucceededFuture(nil)
    }
}
