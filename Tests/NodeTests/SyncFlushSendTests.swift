import NIOCore
import NIOPosix
import CommitLog
import Common
import Remoting
import Testing
import TestSupport

/// SYNC_FLUSH sends through the broker process: many at once on one connection are answered once each, SEND_OK
/// with their own queue offsets (the answers come back in batches after each group commit, `.deferred`).
@Suite(.serialized) struct SyncFlushSendTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test(arguments: ["mmap", "io_uring"])
    func concurrentSyncFlushSendsAreAnsweredOnceEach(io: String) async throws {
        let broker = try RunningBroker(extraConfig: "flushDiskType=SYNC_FLUSH\nioPath=\(io)")
        let client = RemotingClient(group: group)
        let sends = 400
        let address = broker.address
        let offsets = try await withThrowingTaskGroup(of: (Int32, String, String?).self) { tasks in
            for index in 0..<sends {
                tasks.addTask {
                    var request = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: [
                        "a": "PG", "b": "Durable", "c": "TBW102", "d": "4", "e": "-1", "f": "0", "g": "\(wallClockMillis())", "h": "0",
                        "i": "", "j": "0", "k": "false", "m": "false"])
                    request.body = ByteBuffer(bytes: Array("message \(index)".utf8))
                    let answer = try await client.invoke(address, request)
                    return (answer.code, "\(answer.extFields["queueId"] ?? "?")/\(answer.extFields["queueOffset"] ?? "?")",
                            answer.extFields["msgId"])
                }
            }
            var all: [(Int32, String, String?)] = []
            for try await answer in tasks { all.append(answer) }
            return all
        }
        #expect(offsets.count == sends)
        #expect(offsets.allSatisfy { $0.0 == ResponseCode.success && $0.2?.count == 32 })
        #expect(Set(offsets.map { $0.1 }).count == sends, "every send has its own queue offset")
        await client.close()
        #expect(broker.process?.terminate() == 0)
    }
}
