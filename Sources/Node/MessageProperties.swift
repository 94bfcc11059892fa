/// A RocketMQ properties string (`key 0x01 value 0x02 ...`) as ordered pairs, for the few places the
/// broker rewrites one (delay, retry, DLQ). The hot send path stores the client's bytes untouched.
struct MessageProperties {
    var pairs: [(String, String)] = []

    init(_ bytes: some Sequence<UInt8>) {
        let text = String(decoding: Array(bytes), as: UTF8.self)
        for pair in text.split(separator: "\u{2}") {
            guard let separator = pair.firstIndex(of: "\u{1}") else { continue }
            pairs.append((String(pair[..<separator]), String(pair[pair.index(after: separator)...])))
        }
    }

    subscript(key: String) -> String? {
        get { pairs.first { $0.0 == key }?.1 }
        set {
            pairs.removeAll { $0.0 == key }
            if let newValue { pairs.append((key, newValue)) }
        }
    }

    var bytes: [UInt8] { Array(pairs.map { $0.0 + "\u{1}" + $0.1 + "\u{2}" }.joined().utf8) }
}
