import ArgumentParser

/// RocketMQ's `benchmark/producer.sh` flags (4.9's Producer.java options) that `bench producer` takes besides its own:
/// each a short option with a value as producer.sh spells it (`-k true`, `-q 10000`). `-w`, `-s`, `-t` and `-n`
/// are `bench producer`'s own options already.
struct ProducerShOptions: ParsableArguments {
    @Option(name: .customShort("k"), help: "producer.sh keyEnable: true gives every message a unique key (as --keys)")
    var keyEnable = false
    @Option(name: .customShort("q"), help: "producer.sh messageQuantity: messages to send in all (as --messages; 0: run for --duration)")
    var messageQuantity: Int?
    @Option(name: .customShort("l"), help: "producer.sh tagCount: tag each message tag<N> with N = send time in ms modulo tagCount (0: no tag)")
    var tagCount = 0
    @Option(name: .customShort("p"), help: "producer.sh propertySize: add user properties prop0, prop1, ... until they exceed this many bytes")
    var propertySize = 0
    @Option(name: .customShort("d"), help: "producer.sh delayEnable: true sends delayed messages at level -e")
    var delayEnable = false
    @Option(name: .customShort("e"), help: "producer.sh delayLevel: 1...18 (1 s ... 2 h), with -d true")
    var delayLevel = 1
    @Option(name: .customShort("y"), help: "producer.sh asyncEnable: true sends asynchronously (as --mode async, --window in flight per sender)")
    var asyncEnable = false
    @Option(name: .customShort("m"), help: "producer.sh msgTraceEnable: message traces are not supported; true is refused")
    var msgTraceEnable = false
    @Option(name: .customShort("a"), help: "producer.sh aclEnable: ACL signatures are not supported by bench; true is refused")
    var aclEnable = false

    /// The largest `-p`: the properties travel in a header of at most 32,767 bytes with the system ones.
    static let propertySizeMax = 16_384

    func validate() throws {
        guard !msgTraceEnable else { throw ValidationError("-m true: message traces are not supported by this broker or bench") }
        guard !aclEnable else { throw ValidationError("-a true: bench producer does not sign requests (no ACL)") }
        guard tagCount >= 0 else { throw ValidationError("-l (tagCount) must be 0 or more, not \(tagCount)") }
        guard (0...Self.propertySizeMax).contains(propertySize) else {
            throw ValidationError("-p (propertySize) must be within 0...\(Self.propertySizeMax), not \(propertySize)")
        }
        guard (1...18).contains(delayLevel) else { throw ValidationError("-e (delayLevel) must be within 1...18, not \(delayLevel)") }
        guard (messageQuantity ?? 0) >= 0 else { throw ValidationError("-q (messageQuantity) must be 0 or more") }
    }

    /// producer.sh's opening lines: the settings the run uses, in its words.
    func settingsLine(topic: String, threads: Int, size: Int, keys: Bool, messages: Int) -> String {
        "topic: \(topic) threadCount: \(threads) messageSize: \(size) keyEnable: \(keys) propertySize: \(propertySize) "
            + "tagCount: \(tagCount) traceEnable: \(msgTraceEnable) aclEnable: \(aclEnable) messageQuantity: \(messages)\n"
            + "delayEnable: \(delayEnable) delayLevel: \(delayLevel)\nasyncEnable: \(asyncEnable)"
    }

    /// producer.sh's user properties for `-p size`: pairs `prop<i>=hello<v>`, `prop<i+1>=<v>` until the names and
    /// values add up to more than `size` bytes (made once per run: every message carries the same ones).
    static func userProperties(size: Int, start: Int) -> [String: String] {
        var properties: [String: String] = [:]
        var (index, value, total) = (0, start, 0)
        while size > 0 {
            let pairs = [("prop\(index)", "hello\(value)"), ("prop\(index + 1)", "\(value)")]
            for (key, text) in pairs {
                properties[key] = text
                total += key.utf8.count + text.utf8.count
            }
            if total > size { break }
            index += 2
            value += 2
        }
        return properties
    }
}
