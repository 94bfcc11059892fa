import ArgumentParser
import Remoting

/// `-ak`/`-sk` (RocketMQ's benchmark spelling) or `--access-key`/`--secret-key`: bench's clients sign every request
/// for a broker with `aclEnable=true`.
struct BenchCredentials: ParsableArguments {
    @Option(name: [.customLong("access-key"), .customLong("ak", withSingleDash: true)], help: "ACL access key") var accessKey: String?
    @Option(name: [.customLong("secret-key"), .customLong("sk", withSingleDash: true)], help: "ACL secret key") var secretKey: String?

    func validate() throws {
        if (accessKey == nil) != (secretKey == nil) { throw ValidationError("--access-key and --secret-key go together") }
    }

    var value: SessionCredentials? { accessKey.flatMap { key in secretKey.map { SessionCredentials(accessKey: key, secretKey: $0) } } }
}
