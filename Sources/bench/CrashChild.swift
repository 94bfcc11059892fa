#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CommitLog
import IndexFile
import Client
import Common
import Remoting
import Synchronization

/// The crash test's child: appends under SYNC_FLUSH from several producers forever and prints
/// `ACK <offset> <size> <producer> <sequence>` for each put acknowledged as durable. The test kills it.
struct CrashChild: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crash-child", shouldDisplay: false)

    @Option var dir: String
    @Option var io: String = "mmap"
    @Option(help: "mmap under SYNC_FLUSH: on (the default) or off (append through the mapping)") var writeBuffer: String = "on"
    @Option var producers: Int = 4
    @Option var size: Int = 200
    @Option var fileSize: Int = 256 * 1024
    @Option var firstSequence: Int = 0
    @Flag(help: "Put through MessageStore (queues and index) instead of the bare commit log") var store = false

    func run() throws {
        if store { return try runStore() }
        var settings = CommitLogSettings(storePathRootDir: dir)
        settings.ioPath = try parseIOPath(io)
        settings.flushDiskType = .syncFlush
        guard writeBuffer == "on" || writeBuffer == "off" else { throw ValidationError("--write-buffer must be on or off, not \(writeBuffer)") }
        settings.writeBuffer = writeBuffer == "on"
        settings.mappedFileSizeCommitLog = fileSize
        settings.maxMessageSize = 4096
        settings.ioUringArenaSizeBytes = 1 << 20
        let log = try CommitLog(settings: settings)
        let gates = (0..<producers).map { _ in Gate() }
        let statuses = Mutex([DurabilityStatus](repeating: .putOK, count: producers))
        log.onDurable { token, status in
            statuses.withLock { $0[Int(token)] = status }
            gates[Int(token)].signal()
        }
        logLine("READY \(log.recoveryReport.endOffset)")
        let topic = Array("CrashTopic".utf8)
        let size = size, firstSequence = firstSequence
        let threads = (0..<producers).map { producer in
            StoreThread(name: "crash-\(producer)") {
                var body = [UInt8](repeating: 0, count: size)
                var sequence = firstSequence
                while true {
                    body.withUnsafeMutableBytes { fillBody($0, producer: producer, sequence: sequence) }
                    let appended: AppendResult? = topic.withUnsafeBytes { topicBytes in
                        body.withUnsafeBytes { bodyBytes in
                            let view = MessageView(topic: topicBytes, body: bodyBytes, queueID: Int32(producer),
                                                   queueOffset: Int64(sequence))
                            return try? log.put(view, token: UInt64(producer)).0
                        }
                    }
                    guard let appended else { return }
                    gates[producer].wait()
                    if statuses.withLock({ $0[producer] }) == .putOK {
                        let crc = body.withUnsafeBytes { rocketCRC32($0) }
                        logLine("ACK \(appended.physicalOffset) \(appended.size) \(producer) \(sequence) \(crc)")
                    }
                    sequence += 1
                }
            }
        }
        for thread in threads { thread.join() }
    }

    /// Through the MessageStore, async flush: prints `PUT <physicalOffset> <queueId> <queueOffset>` per put.
    /// A SIGKILL then lands anywhere between the log append and the queue/index dispatch.
    private func runStore() throws {
        var config = MessageStoreConfig(storePathRootDir: dir)
        config.commitLog.mappedFileSizeCommitLog = fileSize
        config.commitLog.maxMessageSize = 4096
        config.mappedFileSizeConsumeQueue = 500 * 20
        config.maxHashSlotNum = 500
        config.maxIndexNum = 2000
        let messageStore = try MessageStore(config: config)
        logLine("READY \(messageStore.commitLog.wroteOffset)")
        let size = size, firstSequence = firstSequence
        let threads = (0..<producers).map { producer in
            StoreThread(name: "crash-\(producer)") {
                var body = [UInt8](repeating: 0, count: size)
                var sequence = firstSequence
                let topic = Array("CrashTopic".utf8)
                while true {
                    body.withUnsafeMutableBytes { fillBody($0, producer: producer, sequence: sequence) }
                    let properties = Array("TAGS\u{1}tag\(sequence % 5)\u{2}KEYS\u{1}key-\(producer)-\(sequence)\u{2}".utf8)
                    let put: PutMessageResult? = topic.withUnsafeBytes { t in body.withUnsafeBytes { b in properties.withUnsafeBytes { p in
                        try? messageStore.put(MessageView(topic: t, body: b, properties: p, queueID: Int32(producer % 4)))
                    } } }
                    guard let put else { return }
                    logLine("PUT \(put.append.physicalOffset) \(producer % 4) \(put.queueOffset)")
                    sequence += 1
                }
            }
        }
        for thread in threads { thread.join() }
    }
}
