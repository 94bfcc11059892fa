import NIOCore
import Remoting
import Testing

/// The primitives of plain-ACL request signing against vectors computed elsewhere: SHA-1 (FIPS 180 examples),
/// HMAC-SHA1 (RFC 2202's seven cases), Base64 (RFC 4648), and whole request signatures — some captured from the
/// official C++ client 1.2.3 on the wire (its own HMAC, empty secret), one computed by Python's hmac/hashlib/base64
/// (`base64.b64encode(hmac.new(b"12345678", content, hashlib.sha1).digest())`) — so the algorithm is pinned by
/// something other than our code.
@Suite struct AclSigningTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "a49b2446a02c645bf419f995b67091253a04a259"),
    ])
    func sha1MatchesTheFIPSExamples(message: String, digest: String) {
        #expect(Self.hex(SHA1.hash(Array(message.utf8))) == digest)
    }

    /// A million "a" fed in pieces of every size from 1 to 130 bytes: block boundaries fall everywhere.
    @Test func sha1IsTheSameFedInAnyPieces() {
        let expected = "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(Self.hex(SHA1.hash(message)) == expected)
        for piece in [1, 3, 63, 64, 65, 127, 130] {
            var sha = SHA1()
            var at = 0
            while at < message.count {
                let end = min(message.count, at + piece)
                sha.update(Array(message[at..<end]))
                at = end
            }
            #expect(Self.hex(sha.finalize()) == expected, "pieces of \(piece)")
        }
    }

    static let rfc2202: [(key: [UInt8], message: [UInt8], mac: String)] = [
        ([UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8), "b617318655057264e28bc0b6fb378c8ef146be00"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        ([UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
        (Array(1...25), [UInt8](repeating: 0xCD, count: 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
        ([UInt8](repeating: 0x0C, count: 20), Array("Test With Truncation".utf8), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
        ([UInt8](repeating: 0xAA, count: 80), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
        ([UInt8](repeating: 0xAA, count: 80), Array("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".utf8),
         "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"),
    ]

    @Test(arguments: 0..<7)
    func hmacSHA1MatchesRFC2202(index: Int) {
        let (key, message, mac) = Self.rfc2202[index]
        #expect(Self.hex(HMACSHA1.mac(key: key, message: message)) == mac)
    }

    @Test func base64MatchesRFC4648() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors { #expect(Base64.encode(Array(plain.utf8)) == encoded, "\(plain)") }
        #expect(Base64.encode([0xFB, 0xFF, 0xBF]) == "+/+/")
    }

    /// Headers the C++ client 1.2.3 sent (reference/remoting-protocol.md §2.3/2.4, captured on the wire): its own
    /// `Signature` over `AccessKey` "", `OnsChannel` "ALIYUN" and the rest, with an empty secret key.
    @Test func signatureMatchesWhatTheCppClientSent() {
        let route = RemotingCommand(code: RequestCode.getRouteInfoByTopic, opaque: 0,
                                    extFields: ["AccessKey": "", "OnsChannel": "ALIYUN", "topic": "TopicPush",
                                                "Signature": "ypFJrQ5XzEOexBp9gGehMYDML5Q="])
        #expect(route.aclSignature(secretKey: "") == "ypFJrQ5XzEOexBp9gGehMYDML5Q=")
        let offset = RemotingCommand(code: RequestCode.updateConsumerOffset, opaque: 0, extFields: [
            "AccessKey": "", "OnsChannel": "ALIYUN", "commitOffset": "1", "consumerGroup": "CG_PUSH_CLUSTERING", "queueId": "0",
            "topic": "TopicPush"])
        #expect(offset.aclSignature(secretKey: "") == "EQ3ahZvNw9LdPvD4V8ZtgCArJ5Y=")
        let send = RemotingCommand(code: RequestCode.sendMessage, opaque: 0, extFields: [
            "AccessKey": "", "OnsChannel": "ALIYUN", "batch": "0", "bornTimestamp": "1795367850178", "defaultTopic": "TBW102",
            "defaultTopicQueueNums": "4", "flag": "0", "producerGroup": "PG_TEST",
            "properties": "KEYS\u{1}key1\u{2}TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}0100007F0000CE47000042B338750100\u{2}WAIT\u{1}true\u{2}",
            "queueId": "0", "reconsumeTimes": "0", "sysFlag": "0", "topic": "TopicTest", "unitMode": "0"],
            body: ByteBuffer(string: "hello"))
        #expect(send.aclSignature(secretKey: "") == "6haXZm/JgjdI2JY4VAOlBFP/zPs=")
    }

    static let v2Fields = ["a": "PG_ACL", "b": "TopicTest", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "1700000000000", "h": "0",
                           "i": "TAGS\u{1}TagA\u{2}", "j": "0", "k": "false", "m": "false"]

    /// Python: the values in key order then the body, HMAC-SHA1 keyed "12345678", Base64.
    @Test func signatureMatchesPython() {
        var request = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: Self.v2Fields, body: ByteBuffer(string: "hello acl"))
        request.sign(with: SessionCredentials(accessKey: "RocketMQ", secretKey: "12345678"))
        #expect(request.extFields["Signature"] == "+jTm07AcYPJyxKf7EP8/Q08aer0=")
        #expect(request.extFields["AccessKey"] == "RocketMQ")
        // Without a body; and `Signature` itself (or `_UNIQUE_KEY_QUERY`) never counts.
        var bare = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: Self.v2Fields.merging(["AccessKey": "RocketMQ"]) { a, _ in a })
        #expect(bare.aclSignature(secretKey: "12345678") == "PXJtHLCBq+8o8IMLL5e+o8IsisU=")
        bare.extFields["_UNIQUE_KEY_QUERY"] = "true"
        bare.extFields["Signature"] = "whatever"
        #expect(bare.aclSignature(secretKey: "12345678") == "PXJtHLCBq+8o8IMLL5e+o8IsisU=")
    }

    /// The client's hot path writes binary fields (no dictionary); signing them gives what the dictionary form gives,
    /// and what the broker computes from the decoded frame.
    @Test func binaryFieldsSignLikeADictionary() throws {
        var writer = HeaderFields.Writer()
        for key in Self.v2Fields.keys.sorted().reversed() { writer.append(StaticString(key), Self.v2Fields[key]!) }
        var request = RemotingCommand(code: RequestCode.sendMessageV2, fields: writer.fields, body: ByteBuffer(string: "hello acl"))
        request.sign(with: SessionCredentials(accessKey: "RocketMQ", secretKey: "12345678"))
        #expect(request.field("Signature") == "+jTm07AcYPJyxKf7EP8/Q08aer0=")
        #expect(request.fields?.format == .binary)
        var tokened = RemotingCommand(code: RequestCode.sendMessageV2, opaque: 0, extFields: Self.v2Fields)
        tokened.sign(with: SessionCredentials(accessKey: "RocketMQ", secretKey: "12345678", securityToken: "tok"))
        #expect(tokened.extFields["SecurityToken"] == "tok")
        #expect(tokened.aclSignature(secretKey: "12345678") == tokened.extFields["Signature"])
    }
}

extension StaticString {
    /// Test helper: a StaticString for one of the fixed single-letter keys above.
    init(_ key: String) {
        switch key {
        case "a": self = "a"
        case "b": self = "b"
        case "c": self = "c"
        case "d": self = "d"
        case "e": self = "e"
        case "f": self = "f"
        case "g": self = "g"
        case "h": self = "h"
        case "i": self = "i"
        case "j": self = "j"
        case "k": self = "k"
        default: self = "m"
        }
    }
}
