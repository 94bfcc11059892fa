import CommitLog
import Common
import IndexFile

/// A JSON config file of the broker (`config/topics.json`, ...) holding one body type: read through the body's
/// own decoder (a file missing its table is corrupt, not empty) with the `.bak` fallback of `ConfigFile`, and
/// written pretty-printed as fastjson writes RocketMQ's.
struct ConfigBodyFile<Body: RemotingBody>: Sendable {
    private var file: ConfigFile

    init(storePathRootDir: String, name: String, log: @escaping @Sendable (String) -> Void) {
        file = ConfigFile(path: storePathRootDir + "/config/" + name, log: log)
    }

    var path: String { file.path }

    /// The body on disk, nil for a fresh store. Throws when the file exists but neither it nor its backup reads.
    mutating func load() throws(StoreError) -> Body? {
        try file.load { text in try Body.decode(from: text) }?.0
    }

    mutating func persist(_ body: Body) throws(StoreError) {
        try file.persist(body.json.rendered() + "\n")
    }
}
