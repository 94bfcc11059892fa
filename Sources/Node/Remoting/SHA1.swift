/// SHA-1 (FIPS 180-4), HMAC-SHA1 (RFC 2104) and Base64 (RFC 4648): what RocketMQ's plain ACL signs requests with
/// (`AclSigner`: HmacSHA1 over the request content, Base64 of the 20-byte MAC). No crypto library is available
/// here, so these are ours, checked against the RFC 2202 and FIPS 180 vectors in the tests.
///
/// Incremental: the 64-byte block waits in a tuple and the schedule lives on the stack, so a signature is computed
/// by feeding header values and the body in turn, never by concatenating them first (only `finalize` allocates).
public struct SHA1: Sendable {
    public static let digestSize = 20
    public static let blockSize = 64

    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
    /// The bytes of an unfinished block.
    private var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var blockCount = 0
    private var totalBytes: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        totalBytes &+= UInt64(bytes.count)
        var at = 0
        while at < bytes.count {
            if blockCount == 0 && bytes.count - at >= SHA1.blockSize {
                compress(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + SHA1.blockSize)]))
                at += SHA1.blockSize
                continue
            }
            let take = min(SHA1.blockSize - blockCount, bytes.count - at)
            withUnsafeMutableBytes(of: &block) { buffer in
                buffer.baseAddress!.advanced(by: blockCount).copyMemory(from: bytes.baseAddress!.advanced(by: at), byteCount: take)
            }
            blockCount += take
            at += take
            if blockCount == SHA1.blockSize { compressBlock() }
        }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public mutating func update(_ text: String) {
        var text = text
        text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The 20-byte digest; the value is spent afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        var padding: [UInt8] = [0x80]
        let afterMarker = (blockCount + 1) % SHA1.blockSize
        padding += [UInt8](repeating: 0, count: (SHA1.blockSize + 56 - afterMarker) % SHA1.blockSize)
        for shift in stride(from: 56, through: 0, by: -8) { padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        let keepTotal = totalBytes
        update(padding)
        totalBytes = keepTotal
        precondition(blockCount == 0, "SHA-1 padding must end a block")
        var digest: [UInt8] = []
        digest.reserveCapacity(SHA1.digestSize)
        for word in [h.0, h.1, h.2, h.3, h.4] {
            for shift in stride(from: 24, through: 0, by: -8) { digest.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return digest
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var sha = SHA1()
        sha.update(bytes)
        return sha.finalize()
    }

    private mutating func compressBlock() {
        var copy = block
        withUnsafeBytes(of: &copy) { compress($0) }
        blockCount = 0
    }

    private mutating func compress(_ chunk: UnsafeRawBufferPointer) {
        assert(chunk.count == SHA1.blockSize)
        // The 80-word schedule lives on the stack: a block costs no allocation.
        h = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for index in 0..<16 {
                w[index] = UInt32(chunk[index * 4]) << 24 | UInt32(chunk[index * 4 + 1]) << 16
                    | UInt32(chunk[index * 4 + 2]) << 8 | UInt32(chunk[index * 4 + 3])
            }
            for index in 16..<80 { w[index] = (w[index - 3] ^ w[index - 8] ^ w[index - 14] ^ w[index - 16]).rotatedLeft(1) }
            var (a, b, c, d, e) = h
            for index in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch index {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = a.rotatedLeft(5) &+ f &+ e &+ k &+ w[index]
                (e, d, c, b, a) = (d, c, b.rotatedLeft(30), a, temp)
            }
            return (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
    }
}

extension UInt32 {
    @inline(__always) func rotatedLeft(_ count: UInt32) -> UInt32 { self << count | self >> (32 - count) }
}

/// HMAC-SHA1 (RFC 2104): `SHA1((key ^ opad) || SHA1((key ^ ipad) || message))`, fed incrementally.
public struct HMACSHA1: Sendable {
    private var inner = SHA1()
    private var outerKey: [UInt8]

    public init(key: [UInt8]) {
        var key = key.count > SHA1.blockSize ? SHA1.hash(key) : key
        key += [UInt8](repeating: 0, count: SHA1.blockSize - key.count)
        inner.update(key.map { $0 ^ 0x36 })
        outerKey = key.map { $0 ^ 0x5C }
    }

    public init(key: String) { self.init(key: Array(key.utf8)) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bytes) }
    public mutating func update(_ bytes: [UInt8]) { inner.update(bytes) }
    public mutating func update(_ text: String) { inner.update(text) }

    /// The 20-byte MAC; the value is spent afterwards.
    public mutating func finalize() -> [UInt8] {
        var outer = SHA1()
        outer.update(outerKey)
        outer.update(inner.finalize())
        return outer.finalize()
    }

    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var hmac = HMACSHA1(key: key)
        hmac.update(message)
        return hmac.finalize()
    }
}

/// Base64 with the standard alphabet and `=` padding (Java's `Base64.getEncoder()`, what the signature is sent as).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var at = 0
        while at < bytes.count {
            let count = min(3, bytes.count - at)
            let b0 = UInt32(bytes[at])
            let b1 = count > 1 ? UInt32(bytes[at + 1]) : 0
            let b2 = count > 2 ? UInt32(bytes[at + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(triple >> 18 & 63)])
            output.append(alphabet[Int(triple >> 12 & 63)])
            output.append(count > 1 ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            output.append(count > 2 ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            at += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
