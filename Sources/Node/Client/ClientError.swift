import Common
import Remoting
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a client call failed.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    /// The broker or NameServer answered with an error code.
    case broker(code: Int32, remark: String, address: String)
    case noRoute(topic: String)
    /// No NameServer answered: the whole sentence, naming each address and why (`cannot reach NameServer
    /// 127.0.0.1:9876 (connection refused)`).
    case noNameServer(String)
    case badResponse(String)
    case notStarted
    case messageTooLarge(Int, max: Int)
    /// The message or its topic breaks a rule (checked before anything is sent).
    case illegalMessage(String)

    public var description: String {
        switch self {
        case .broker(let code, let remark, let address): "\(address) answered code \(code): \(remark)"
        case .noRoute(let topic): "No route info of this topic: \(topic)"
        case .noNameServer(let sentence): sentence
        case .badResponse(let detail): "bad response: \(detail)"
        case .notStarted: "the client is not started (or already shut down)"
        case .messageTooLarge(let size, let max): "the message body size \(size) exceeds the maximum \(max)"
        case .illegalMessage(let detail): detail
        }
    }
}

/// Client-made message ids (UNIQ_KEY), shaped like Java's: ip, pid, a per-process number, then time and a
/// counter, 32 upper-case hex digits.
enum UniqueID {
    static let counter = Atomic<UInt32>(0)
    static let prefix: String = {
        var bytes: [UInt8] = [127, 0, 0, 1]
        let pid = UInt16(truncatingIfNeeded: getpid())
        bytes += [UInt8(pid >> 8), UInt8(truncatingIfNeeded: pid)]
        let salt = UInt32.random(in: 0...UInt32.max)
        bytes += [UInt8(salt >> 24), UInt8(truncatingIfNeeded: salt >> 16), UInt8(truncatingIfNeeded: salt >> 8), UInt8(truncatingIfNeeded: salt)]
        return hex(bytes)
    }()
    static let start = currentTimeMillis()

    static func next() -> String {
        let elapsed = UInt32(truncatingIfNeeded: currentTimeMillis() - start)
        let count = UInt16(truncatingIfNeeded: counter.wrappingAdd(1, ordering: .relaxed).oldValue)
        return prefix + hex([UInt8(elapsed >> 24), UInt8(truncatingIfNeeded: elapsed >> 16), UInt8(truncatingIfNeeded: elapsed >> 8),
                             UInt8(truncatingIfNeeded: elapsed), UInt8(count >> 8), UInt8(truncatingIfNeeded: count)])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (index, byte) in bytes.enumerated() {
                let high = byte >> 4, low = byte & 15
                out[2 * index] = high < 10 ? 48 + high : 55 + high
                out[2 * index + 1] = low < 10 ? 48 + low : 55 + low
            }
            return bytes.count * 2
        }
    }
}

/// A broadcasting consumer's offsets, kept in its own file (RocketMQ's `LocalFileOffsetStore`:
/// `{"offsetTable":{{"brokerName":..,"queueId":..,"topic":..}:offset}}`, MessageQueue object keys).
struct LocalOffsetTable: RemotingBody {
    var offsetTable: [MessageQueue: Int64]

    init(offsetTable: [MessageQueue: Int64]) { self.offsetTable = offsetTable }

    init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "OffsetSerializeWrapper")
        offsetTable = [:]
        for (key, value) in try body.requiredMembers("offsetTable") {
            guard let queue = try? JSONValue.parse(key), let offset = value.int else { throw body.fail("bad entry \(key)") }
            offsetTable[try MessageQueue(json: queue)] = offset
        }
    }

    var json: JSONValue {
        .object([("offsetTable", .bareKeyObject(offsetTable.keys.sorted().map { ($0.json.compactText, .integer(offsetTable[$0]!)) }))])
    }
}
