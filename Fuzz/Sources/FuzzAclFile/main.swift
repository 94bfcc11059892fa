// plain_acl.yml as the broker reads it at start and on every change: the YAML subset, the account model and the
// white-address patterns. Invariants: no crash, hang or unbounded recursion on any text; a file that reads is
// written back (`yaml()`) as text that reads to the same model; every pattern the model accepted still parses.
import Common
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func seeds() -> [[UInt8]] {
    let shipped = """
        globalWhiteRemoteAddresses:
          - 10.10.103.*
          - 192.168.0.{1,2}
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
            groupPerms: [groupA=DENY, groupB=SUB]   # a comment
          - accessKey: rocketmq2
            secretKey: "8765\\u00343210"
            whiteRemoteAddress: 192.168.1.1-5
            admin: true
        dataVersion:
        - counter: 2
          timestamp: 1700000000000
        """
    var file = PlainAclFile()
    var account = PlainAccessConfig(accessKey: "quoted'key", secretKey: "it's: #odd")
    account.whiteRemoteAddress = "::1,10.0.0.1"
    file.accounts = [account]
    return [Array(shipped.utf8), Array(file.yaml().utf8), Array("accounts: []\n".utf8)]
}

fuzzMain(seeds: seeds) { input in
    let text = String(decoding: input, as: UTF8.self)
    guard let file = try? PlainAclFile.parse(text, file: "fuzz.yml") else { return }
    let written = file.yaml()
    let again: PlainAclFile
    do { again = try PlainAclFile.parse(written, file: "written.yml") } catch {
        fuzzFailure("a file that read was written back as text that does not: \(error)\n\(written)")
    }
    guard again == file else { fuzzFailure("written back, the file reads differently:\n\(written)") }
    for address in file.globalWhiteRemoteAddresses + file.accounts.compactMap(\.whiteRemoteAddress) {
        guard (try? AclAddressPattern(parsing: address)) != nil else { fuzzFailure("accepted pattern \(address) no longer parses") }
    }
}
