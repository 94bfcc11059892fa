import ArgumentParser
import Client
import Common

struct WipeWritePerm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wipeWritePerm", abstract: "Wipe write perm of broker in all name server")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String

    func run() async throws { try await operateWritePerm(options, brokerName: brokerName, wipe: true) }
}

struct AddWritePerm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "addWritePerm", abstract: "Add write perm of broker in all name server")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "broker name") var brokerName: String

    func run() async throws { try await operateWritePerm(options, brokerName: brokerName, wipe: false) }
}

/// One line per NameServer as RocketMQ prints it; exit status 1 when any of them failed.
func operateWritePerm(_ options: NameServerOption, brokerName: String, wipe: Bool) async throws {
    try await withAdmin(options) { admin in
        var failed = false
        for (server, result) in await admin.operateWritePerm(brokerName: brokerName, wipe: wipe) {
            let verb = wipe ? "wipe" : "add"
            switch result {
            case .success(let count): print("\(verb) write perm of broker[\(brokerName)] in name server[\(server)] OK, \(count)")
            case .failure(let error):
                print("\(verb) write perm of broker[\(brokerName)] in name server[\(server)] Failed")
                FileHandleLite.standardError("mqadmin: \(server): \(error)\n")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct UpdateKvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateKvConfig", abstract: "Create or update KV config.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("s"), help: "set the namespace") var namespace: String
    @Option(name: .customShort("k"), help: "set the key name") var key: String
    @Option(name: .customShort("v"), help: "set the key value") var value: String

    func run() async throws {
        try await withAdmin(options) { admin in
            guard !namespace.isEmpty, !key.isEmpty else { throw failArgument("-s and -k must not be empty") }
            try await admin.putKVConfig(namespace: namespace, key: key, value: value)
            print("create or update kv config to namespace success.")
        }
    }
}

struct DeleteKvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deleteKvConfig", abstract: "Delete KV config.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("s"), help: "set the namespace") var namespace: String
    @Option(name: .customShort("k"), help: "set the key name") var key: String

    func run() async throws {
        try await withAdmin(options) { admin in
            guard !namespace.isEmpty, !key.isEmpty else { throw failArgument("-s and -k must not be empty") }
            try await admin.deleteKVConfig(namespace: namespace, key: key)
            print("delete kv config from namespace success.")
        }
    }
}

struct GetNamesrvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "getNamesrvConfig", abstract: "Get configs of name server.")
    @OptionGroup var options: NameServerOption

    func run() async throws {
        try await withAdmin(options) { admin in
            for (server, properties) in try await admin.nameServerConfig() {
                print("============\(server)============")
                for (key, value) in properties { print(left(key, 50) + "=  " + value) }
            }
        }
    }
}

struct UpdateNamesrvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateNamesrvConfig", abstract: "Update configs of name server.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("k"), help: "config key") var key: String
    @Option(name: .customShort("v"), help: "config value") var value: String

    func run() async throws {
        try await withAdmin(options) { admin in
            guard !key.isEmpty, !key.contains("="), !key.contains("\n"), !value.contains("\n") else {
                throw failArgument("-k must be one key without '=' and -v one line")
            }
            try await admin.updateNameServerConfig(key: key, value: value)
            print("update name server config success![\(admin.nameServers.joined(separator: ", "))]\n\(key) : \(value)")
        }
    }
}

struct UpdateOrderConf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateOrderConf", abstract: "Create or update or delete order conf")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String
    @Option(name: .customShort("v"), help: "set order conf [eg. brokerName1:num;brokerName2:num]") var orderConf: String?
    @Option(name: .customShort("m"), help: "option type [eg. put|get|delete") var method: String

    static let namespace = "ORDER_TOPIC_CONFIG"

    func run() async throws {
        try await withAdmin(options) { admin in
            switch method {
            case "get":
                let conf = try await admin.kvConfig(namespace: Self.namespace, key: topic)
                guard let conf else { throw failArgument("no order conf for topic \(topic)") }
                print("get orderConf success. topic=[\(topic)], orderConf=[\(conf)] ")
            case "put":
                guard let orderConf, !orderConf.isEmpty else { throw failArgument("please set orderConf with option -v.") }
                try checkOrderConf(orderConf)
                try await admin.putKVConfig(namespace: Self.namespace, key: topic, value: orderConf)
                print("update orderConf success. topic=[\(topic)], orderConf=[\(orderConf)]")
            case "delete":
                try await admin.deleteKVConfig(namespace: Self.namespace, key: topic)
                print("delete orderConf success. topic=[\(topic)]")
            default:
                throw failArgument("-m must be put, get or delete, not \(method)")
            }
        }
    }

    /// `brokerName:queueNums;...` with positive queue counts.
    func checkOrderConf(_ conf: String) throws {
        for part in conf.split(separator: ";") {
            let pieces = part.split(separator: ":")
            guard pieces.count == 2, !pieces[0].isEmpty, let count = Int(pieces[1]), count > 0 else {
                throw failArgument("-v must read brokerName:queueNums;brokerName:queueNums, not \(conf)")
            }
        }
    }
}
