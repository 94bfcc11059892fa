@testable import Broker
import Common
import NIOCore
import Remoting
import Testing

/// `plain_acl.yml` as RocketMQ ships and SnakeYAML rewrites it, read into the model; bad files refused with file, line
/// and problem; white-address patterns; and the rules' decisions with RocketMQ's messages.
@Suite struct PlainAclFileTests {
    /// RocketMQ 4.9's distribution/conf/plain_acl.yml (its layout: comments, indented lists, an empty value).
    static let shipped = """
        globalWhiteRemoteAddresses:
          - 10.10.103.*
          - 192.168.0.*

        accounts:
          - accessKey: RocketMQ
            secretKey: 12345678
            whiteRemoteAddress:
            admin: false
            defaultTopicPerm: DENY
            defaultGroupPerm: SUB
            topicPerms:
              - topicA=DENY
              - topicB=PUB|SUB
              - topicC=SUB
            groupPerms:
              # the group should convert to retry topic
              - groupA=DENY
              - groupB=PUB|SUB
              - groupC=SUB

          - accessKey: rocketmq2
            secretKey: 12345678
            whiteRemoteAddress: 192.168.1.*
            # if it is admin, it could access all resources
            admin: true
        """

    @Test func readsTheFileRocketMQShips() throws {
        let file = try PlainAclFile.parse(Self.shipped, file: "plain_acl.yml")
        #expect(file.globalWhiteRemoteAddresses == ["10.10.103.*", "192.168.0.*"])
        #expect(file.accounts.count == 2)
        let first = file.accounts[0]
        #expect(first.accessKey == "RocketMQ" && first.secretKey == "12345678" && first.whiteRemoteAddress == nil && !first.admin)
        #expect(first.defaultTopicPerm == "DENY" && first.defaultGroupPerm == "SUB")
        #expect(first.topicPerms == ["topicA=DENY", "topicB=PUB|SUB", "topicC=SUB"])
        #expect(first.groupPerms == ["groupA=DENY", "groupB=PUB|SUB", "groupC=SUB"])
        #expect(file.accounts[1].admin && file.accounts[1].whiteRemoteAddress == "192.168.1.*")
        let crlf = Self.shipped.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
        #expect(try PlainAclFile.parse(crlf, file: "windows.yml") == file)
    }

    /// What we write back (SnakeYAML's shape: dashes at the key's column, quoted numbers) reads back the same.
    @Test func writtenFilesReadBackTheSame() throws {
        var file = try PlainAclFile.parse(Self.shipped, file: "plain_acl.yml")
        file.dataVersion = AclDataVersion(counter: 3, timestamp: 1_700_000_000_000)
        // Found by FuzzAclFile: a combining mark after an escaped quote joined it into one Character.
        file.accounts[1].secretKey = "it's: #odd\"\u{05A9}p:p \u{1F600}\u{0}"
        file.accounts[1].accessKey = "it's: #odd"
        let text = file.yaml()
        #expect(text.contains("accounts:\n- accessKey: RocketMQ\n  secretKey: '12345678'\n"), "\(text)")
        #expect(try PlainAclFile.parse(text, file: "again.yml") == file)
        let snake = "globalWhiteRemoteAddresses: []\naccounts:\n- accessKey: abcdefg\n  secretKey: \"abc\\u0041efg\"\n  admin: true\n"
            + "dataVersion:\n- {counter: 1}\n"
        #expect(throws: YAMLError.self) { try PlainAclFile.parse(snake, file: "s.yml") }  // flow maps with members: refused, with the line
        let parsed = try PlainAclFile.parse(String(snake.dropLast("dataVersion:\n- {counter: 1}\n".count)), file: "s.yml")
        #expect(parsed.accounts[0].secretKey == "abcAefg" && parsed.globalWhiteRemoteAddresses.isEmpty)
    }

    @Test(arguments: [
        ("accounts:\n\t- accessKey: x\n", 2, "tab in indentation"),
        ("accounts:\n  - accessKey: abcdefg\n     secretKey: abcdefg\n", 3, "unexpected indentation"),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n    topicPerm:\n      - a=PUB\n", 4, "unknown account key \"topicPerm\""),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n    defaultTopicPerm: ALL\n", 2, "defaultTopicPerm \"ALL\""),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n    topicPerms: [a=WRITE]\n", 2, "Parse resource permission error"),
        ("accounts:\n  - accessKey: abc\n    secretKey: abcdefg\n", 2, "length should longer than 6"),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n    whiteRemoteAddress: 192.168.1.300\n", 2, "is not an IPv4"),
        ("globalWhiteRemoteAddresses:\n  - 10.*.1.5\n", 2, "the parts after a range or * must be *"),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n  - accessKey: abcdefg\n    secretKey: hijklmn\n", 4, "appears twice"),
        ("accounts: &anchor\n", 1, "not supported"),
        ("accounts:\n  - secretKey: 'unterminated\n", 2, "unterminated"),
        ("whitelist:\n  - 1.2.3.4\n", 1, "unknown key \"whitelist\""),
        ("accounts:\n  - accessKey: abcdefg\n    secretKey: abcdefg\n    admin: maybe\n", 4, "admin must be true or false"),
    ])
    func badFilesNameTheLineAndTheProblem(text: String, line: Int, problem: String) {
        do {
            _ = try PlainAclFile.parse(text, file: "plain_acl.yml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "plain_acl.yml" && error.line == line, "\(error)")
            #expect(error.problem.contains(problem), "\(error)")
        }
    }

    @Test func nestingAndSizeAreBounded() {
        var deep = ""
        for level in 0..<40 { deep += String(repeating: " ", count: level * 2) + "k\(level):\n" }
        #expect(throws: YAMLError.self) { try YAML.parse(deep, file: "deep.yml") }
        let huge = String(repeating: "# padding\n", count: YAML.sizeBytesMax / 10 + 1)
        #expect(throws: YAMLError.self) { try YAML.parse(huge, file: "huge.yml") }
    }

    @Test func whiteAddressPatternsMatchLikeRocketMQs() throws {
        let cases: [(String, [String], [String])] = [
            ("*", ["1.2.3.4", "::1"], []),
            ("192.168.0.*", ["192.168.0.1", "192.168.0.255"], ["192.168.1.1", "10.0.0.1"]),
            ("192.168.*.*", ["192.168.7.9"], ["192.169.0.1"]),
            ("192.168.1.1-5", ["192.168.1.1", "192.168.1.5"], ["192.168.1.6", "192.168.1.0"]),
            ("10.1-20.*.*", ["10.20.0.1", "10.1.255.255"], ["10.21.0.1"]),
            ("192.168.0.{1,2}", ["192.168.0.1", "192.168.0.2"], ["192.168.0.3"]),
            ("10.0.0.1,10.0.0.2", ["10.0.0.2"], ["10.0.0.3"]),
            ("127.0.0.1", ["127.0.0.1", "::ffff:127.0.0.1"], ["127.0.0.2"]),
            ("::1", ["0:0:0:0:0:0:0:1"], ["::2"]),
            ("", [], ["127.0.0.1"]),
        ]
        for (text, matching, other) in cases {
            let pattern = try AclAddressPattern(parsing: text)
            for host in matching { #expect(pattern.matches(host), "\(text) should match \(host)") }
            for host in other { #expect(!pattern.matches(host), "\(text) should not match \(host)") }
        }
        for bad in ["300.1.1.1", "*.1.1.1", "1.2.3.9-2", "1.2.3", "fe80::1-5", "10.0.0.{}", "a.b.c.d"] {
            #expect(throws: AclPatternError.self, "\(bad)") { try AclAddressPattern(parsing: bad) }
        }
    }

    /// The decisions and RocketMQ's remarks, request by request, against the shipped file's rules.
    @Test func rulesDecideLikeRocketMQ() throws {
        let rules = try AclRules(try PlainAclFile.parse(Self.shipped, file: "plain_acl.yml"))
        func check(_ code: Int32, _ fields: [String: String], key: String? = "RocketMQ", secret: String = "12345678",
                   host: String = "127.0.0.1", body: ByteBuffer? = nil) -> String? {
            var request = RemotingCommand(code: code, opaque: 0, extFields: fields, body: body)
            if let key { request.sign(with: SessionCredentials(accessKey: key, secretKey: secret)) }
            do { try PlainAccessValidator.check(request, host: host, rules: rules) } catch { return error.description }
            return nil
        }
        #expect(check(RequestCode.sendMessageV2, ["b": "topicB", "a": "PG"]) == nil)
        #expect(check(RequestCode.sendMessageV2, ["b": "topicA", "a": "PG"]) == "No default permission for topic:topicA")
        #expect(check(RequestCode.sendMessageV2, ["b": "topicC", "a": "PG"]) == "No default permission for topic:topicC")
        #expect(check(RequestCode.sendMessageV2, ["b": "other", "a": "PG"]) == "No default permission for topic:other")
        #expect(check(RequestCode.pullMessage, ["topic": "topicC", "consumerGroup": "groupC"]) == nil)
        #expect(check(RequestCode.pullMessage, ["topic": "topicC", "consumerGroup": "groupA"]) == "No default permission for group:groupA")
        #expect(check(RequestCode.pullMessage, ["topic": "topicC", "consumerGroup": "anyGroup"]) == nil)  // defaultGroupPerm SUB
        #expect(check(RequestCode.consumerSendMsgBack, ["group": "groupA"]) == "No default permission for group:groupA")
        #expect(check(RequestCode.sendMessageV2, ["b": "topicB"], secret: "wrong-secret") == "Check signature failed for accessKey=RocketMQ")
        #expect(check(RequestCode.sendMessageV2, ["b": "topicB"], key: "nobody1") == "No acl config for nobody1")
        #expect(check(RequestCode.sendMessageV2, ["b": "topicB"], key: nil) == "No accessKey is configured")
        #expect(check(RequestCode.updateAndCreateTopic, ["topic": "x"])
                == "Need admin permission for request code=17, but accessKey=RocketMQ is not")
        #expect(check(RequestCode.updateAndCreateTopic, ["topic": "x"], key: "rocketmq2") == nil)
        // White addresses: the global ones need nothing at all; an account's own skips the signature.
        #expect(check(RequestCode.sendMessageV2, ["b": "topicA"], key: nil, host: "10.10.103.7") == nil)
        #expect(check(RequestCode.updateAndCreateTopic, ["topic": "x"], key: "rocketmq2", secret: "wrong-secret", host: "192.168.1.9") == nil)
        let heartbeat = HeartbeatData(clientID: "c", consumerDataSet: [
            ConsumerData(groupName: "groupA", consumeType: "CONSUME_PASSIVELY", messageModel: .clustering, consumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
                         subscriptionDataSet: [SubscriptionData(topic: "topicC", subString: "*")]),
        ])
        #expect(check(RequestCode.heartBeat, [:], body: heartbeat.encode()) == "No default permission for group:groupA")
        #expect(check(RequestCode.heartBeat, [:], body: ByteBuffer(string: "{not json")) != nil)
    }
}
