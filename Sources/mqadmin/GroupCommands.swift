import ArgumentParser
import Client
import Common

/// `true` or `false` as RocketMQ's tools take them; anything else is an argument error.
func parseBool(_ text: String?, option: String) throws -> Bool? {
    guard let text else { return nil }
    switch text.lowercased() {
    case "true": return true
    case "false": return false
    default: throw failArgument("\(option) must be true or false, not \(text)")
    }
}

struct UpdateSubGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateSubGroup", abstract: "Update or create subscription group.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "create subscription group to which broker") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "create subscription group to which cluster") var clusterName: String?
    @Option(name: .customShort("g"), help: "consumer group name") var group: String
    @Option(name: .customShort("s"), help: "consume enable") var consumeEnable: String?
    @Option(name: .customShort("m"), help: "from min offset") var consumeFromMinEnable: String?
    @Option(name: .customShort("d"), help: "broadcast") var consumeBroadcastEnable: String?
    @Option(name: .customShort("q"), help: "retry queue nums") var retryQueueNums: Int?
    @Option(name: .customShort("r"), help: "retry max times") var retryMaxTimes: Int?
    @Option(name: .customShort("i"), help: "consumer from which broker id") var brokerID: Int64?
    @Option(name: .customShort("w"), help: "which broker id when consume slowly") var slowBrokerID: Int64?
    @Option(name: .customShort("a"), help: "notify consumerId changed") var notifyConsumerIdsChanged: String?

    /// The settings as RocketMQ's tool builds them: broadcast and from-min off unless given, the rest defaults.
    func config() throws -> SubscriptionGroupConfig {
        var config = SubscriptionGroupConfig(groupName: String(group.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()))
        guard !config.groupName.isEmpty else { throw failArgument("-g must name a consumer group") }
        config.consumeBroadcastEnable = try parseBool(consumeBroadcastEnable, option: "-d") ?? false
        config.consumeFromMinEnable = try parseBool(consumeFromMinEnable, option: "-m") ?? false
        config.consumeEnable = try parseBool(consumeEnable, option: "-s") ?? true
        config.notifyConsumerIdsChangedEnable = try parseBool(notifyConsumerIdsChanged, option: "-a") ?? true
        if let retryQueueNums {
            guard (0...TopicConfig.queueNumsMax).contains(retryQueueNums) else { throw failArgument("-q must be within 0...\(TopicConfig.queueNumsMax)") }
            config.retryQueueNums = retryQueueNums
        }
        if let retryMaxTimes {
            guard (-1...1000).contains(retryMaxTimes) else { throw failArgument("-r must be within -1...1000") }
            config.retryMaxTimes = retryMaxTimes
        }
        if let brokerID { config.brokerId = brokerID }
        if let slowBrokerID { config.whichBrokerWhenConsumeSlowly = slowBrokerID }
        return config
    }

    func run() async throws {
        try await withAdmin(options) { admin in
            let config = try config()
            for address in try await admin.targets(brokerAddr: brokerAddr, cluster: clusterName) {
                try await admin.updateSubscriptionGroup(config, brokerAddr: address)
                print("create subscription group to \(address) success.")
            }
            print(config.javaDescription)
        }
    }
}

struct DeleteSubGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deleteSubGroup", abstract: "Delete subscription group from broker.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "delete subscription group from which broker") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "delete subscription group from which cluster") var clusterName: String?
    @Option(name: .customShort("g"), help: "subscription group name") var group: String
    @Option(name: .customShort("r"), help: "remove offset") var removeOffset: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            let remove = try parseBool(removeOffset, option: "-r") ?? false
            let addresses = try await admin.targets(brokerAddr: brokerAddr, cluster: clusterName)
            for address in addresses {
                try await admin.deleteSubscriptionGroup(group, brokerAddr: address, removeOffset: remove)
                if let clusterName, brokerAddr == nil {
                    print("delete subscription group [\(group)] from broker [\(address)] in cluster [\(clusterName)] success.")
                } else {
                    print("delete subscription group [\(group)] from broker [\(address)] success.")
                }
            }
            // A whole cluster: the group's retry and dead-letter topics go too (errors there are reported, not fatal).
            if let clusterName, brokerAddr == nil {
                for topic in [TopicValidator.retryTopic(group: group), TopicValidator.dlqGroupTopicPrefix + group] {
                    do {
                        _ = try await admin.deleteTopic(topic, cluster: clusterName)
                        print("delete topic [\(topic)] from cluster [\(clusterName)] success.")
                        print("delete topic [\(topic)] from NameServer success.")
                    } catch {
                        FileHandleLite.standardError("mqadmin: delete topic \(topic): \(error)\n")
                    }
                }
            }
        }
    }
}

struct ConsumerConnectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumerConnection", abstract: "Query consumer's socket connection, client version and subscription.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "consumer group name") var group: String
    @Option(name: .customShort("b"), help: "broker address") var brokerAddr: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            let connection = try await admin.consumerConnection(group: group, brokerAddr: brokerAddr)
            print(left("#ClientId", 36) + " " + left("#ClientAddr", 22) + " " + left("#Language", 10) + " #Version")
            for member in connection.connectionSet {
                print(left(member.clientId, 36) + " " + left(member.clientAddr, 22) + " " + left(member.language, 10) + " "
                      + MQVersion.description(member.version))
            }
            print("\nBelow is subscription:")
            print(left("#Topic", 20) + " #SubExpression")
            for topic in connection.subscriptionTable.keys.sorted() {
                print(left(topic, 20) + " " + connection.subscriptionTable[topic]!.subString)
            }
            print("")
            print("ConsumeType: \(connection.consumeType)")
            print("MessageModel: \(connection.messageModel)")
            print("ConsumeFromWhere: \(connection.consumeFromWhere)")
        }
    }
}

struct ProducerConnectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producerConnection", abstract: "Query producer's socket connection and client version.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "producer group name") var group: String
    @Option(name: .customShort("t"), help: "topic name") var topic: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let connection = try await admin.producerConnection(group: group, topic: topic)
            for (index, member) in connection.connectionSet.enumerated() {
                let number = String(index + 1)
                print(String(repeating: "0", count: max(0, 4 - number.count)) + number + "  " + left(member.clientId, 32) + " "
                      + left(member.clientAddr, 22) + " " + left(member.language, 8) + " " + MQVersion.description(member.version))
            }
        }
    }
}

struct GetConsumerConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "getConsumerConfig", abstract: "Get consumer config by subscription group name!")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("g"), help: "subscription group name") var group: String

    func run() async throws {
        try await withAdmin(options) { admin in
            var brokers: [String: Admin.BrokerEntry] = [:]
            for broker in try await admin.clusterInfo() where brokers[broker.brokerName] == nil || broker.brokerID == BrokerData.masterID {
                brokers[broker.brokerName] = broker
            }
            var found = false
            for name in brokers.keys.sorted() {
                let broker = brokers[name]!
                guard let config = try await admin.subscriptionGroupConfig(group, brokerAddr: broker.address) else { continue }
                found = true
                print("=============================\(broker.cluster):\(name)=============================")
                let fields: [(String, String)] = [
                    ("groupName", config.groupName), ("consumeEnable", "\(config.consumeEnable)"),
                    ("consumeFromMinEnable", "\(config.consumeFromMinEnable)"), ("consumeBroadcastEnable", "\(config.consumeBroadcastEnable)"),
                    ("retryQueueNums", "\(config.retryQueueNums)"), ("retryMaxTimes", "\(config.retryMaxTimes)"),
                    ("brokerId", "\(config.brokerId)"), ("whichBrokerWhenConsumeSlowly", "\(config.whichBrokerWhenConsumeSlowly)"),
                    ("notifyConsumerIdsChangedEnable", "\(config.notifyConsumerIdsChangedEnable)"),
                ]
                for (field, value) in fields { print(left(field, 40) + "=  " + value) }
            }
            if !found { throw failArgument("no broker has a subscription group \(group)") }
        }
    }
}
