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
    /// The first 10 bytes: IPv4 127.0.0.1, the pid's low 16 bits, a random number; as the two words' top bits.
    static let prefix: (high: UInt64, low: UInt64) = {
        let pid = UInt64(UInt16(truncatingIfNeeded: getpid()))
        let salt = UInt64(UInt32.random(in: 0...UInt32.max))
        return (0x7F00_0001 << 32 | pid << 16 | salt >> 16, (salt & 0xFFFF) << 48)
    }()
    static let start = currentTimeMillis()

    /// The next id as 16 bytes: prefix, milliseconds since start (4 bytes), counter (2 bytes).
    static func nextPacked(now: Int64 = currentTimeMillis()) -> PackedID {
        let elapsed = UInt64(UInt32(truncatingIfNeeded: now - start))
        let count = UInt64(UInt16(truncatingIfNeeded: counter.wrappingAdd(1, ordering: .relaxed).oldValue))
        return PackedID(high: prefix.high, low: prefix.low | elapsed << 16 | count)
    }

    static func next() -> String { nextPacked().hexString }
}

/// A 16-byte id (UNIQ_KEY, a broker's offset id) kept as two words and written as 32 upper-case hex digits only
/// when asked for: a send's ids cost nothing unless read.
struct PackedID: Sendable, Equatable {
    var high: UInt64
    var low: UInt64
    static let hexCount = 32

    /// The id's hex digits into `target` (at least 32 bytes).
    func storeHex(into target: UnsafeMutableRawBufferPointer) {
        for index in 0..<Self.hexCount {
            let word = index < 16 ? high : low
            let nibble = UInt8(truncatingIfNeeded: word >> (60 - 4 * UInt64(index % 16))) & 15
            target[index] = nibble < 10 ? 48 + nibble : 55 + nibble
        }
    }

    var hexString: String {
        String(unsafeUninitializedCapacity: Self.hexCount) { out in
            storeHex(into: UnsafeMutableRawBufferPointer(out))
            return Self.hexCount
        }
    }

    /// 32 upper-case hex digits packed (nil for any other text: it stays text).
    init?(hex raw: UnsafeRawBufferPointer) {
        guard raw.count == Self.hexCount else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        for (index, byte) in raw.enumerated() {
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            if index < 16 { words.0 = words.0 << 4 | UInt64(nibble) } else { words.1 = words.1 << 4 | UInt64(nibble) }
        }
        (high, low) = words
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
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
