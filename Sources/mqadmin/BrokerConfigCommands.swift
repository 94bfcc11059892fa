import ArgumentParser
import Client
import Common
import Remoting

struct GetBrokerConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "getBrokerConfig", abstract: "Get broker config by cluster or special broker!")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "get which broker") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "get which cluster") var clusterName: String?

    func run() async throws {
        try await withAdmin(options) { admin in
            if let brokerAddr {
                try await printConfig(admin, header: "============\(brokerAddr)============", address: brokerAddr)
                return
            }
            guard let clusterName else { throw failArgument("give a broker address (-b) or a cluster (-c)") }
            let brokers = try await admin.clusterInfo().filter { $0.cluster == clusterName }
            guard !brokers.isEmpty else { throw failArgument("no broker in cluster \(clusterName)") }
            for master in brokers where master.brokerID == BrokerData.masterID {
                try await printConfig(admin, header: "============Master: \(master.address)============", address: master.address)
                for slave in brokers where slave.brokerName == master.brokerName && slave.brokerID != BrokerData.masterID {
                    try await printConfig(admin, header: "============My Master: \(master.address)=====Slave: \(slave.address)============",
                                          address: slave.address)
                }
            }
        }
    }

    func printConfig(_ admin: Admin, header: String, address: String) async throws {
        print(header)
        let properties = try await admin.brokerConfig(address)
        guard !properties.isEmpty else {
            print("Broker[\(address)] has no config property!")
            return
        }
        for (key, value) in properties { print(left(key, 50) + "=  " + value) }
        print("")
    }
}

struct UpdateBrokerConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateBrokerConfig", abstract: "Update broker's config")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "update which broker") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "update which cluster") var clusterName: String?
    @Option(name: .customShort("k"), help: "config key") var key: String
    @Option(name: .customShort("v"), help: "config value") var value: String

    func run() async throws {
        try await withAdmin(options) { admin in
            guard !key.isEmpty, !key.contains("="), !key.contains("\n"), !value.contains("\n") else {
                throw failArgument("-k must be one key without '=' and -v one line")
            }
            for address in try await admin.targets(brokerAddr: brokerAddr, cluster: clusterName) {
                try await admin.updateBrokerConfig(address, key: key, value: value)
                print("update broker config success, \(address)")
            }
        }
    }
}

struct UpdateTopicPerm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "updateTopicPerm", abstract: "Update topic perm")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "create topic to which broker") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "create topic to which cluster") var clusterName: String?
    @Option(name: .customShort("t"), help: "topic name") var topic: String
    @Option(name: .customShort("p"), help: "set topic's permission(2|4|6), intro[2:W; 4:R; 6:RW]") var perm: Int

    func run() async throws {
        try await withAdmin(options) { admin in
            guard [2, 4, 6].contains(perm) else { throw failArgument("-p must be 2 (W), 4 (R) or 6 (RW), not \(perm)") }
            let route = try await admin.topicRoute(topic).route
            guard let first = route.queueDatas.first else { throw failArgument("topic \(topic) has no queues in its route") }
            let description = "TopicConfig [topicName=\(topic), readQueueNums=\(first.readQueueNums), writeQueueNums=\(first.writeQueueNums), "
                + "perm=\(Permission(rawValue: perm)), topicFilterType=SINGLE_TAG, topicSysFlag=\(first.topicSysFlag), order=false]"
            if let brokerAddr {
                guard let broker = route.brokerDatas.first(where: { $0.masterAddress == brokerAddr }) else {
                    throw failArgument("updateTopicPerm error broker not exit or broker is not master!.")
                }
                let old = route.queueDatas.first { $0.brokerName == broker.brokerName }?.perm.rawValue ?? 0
                guard old != perm else {
                    print("new perm equals to the old one!")
                    return
                }
                try await update(admin, address: brokerAddr, from: first)
                print("update topic perm from \(old) to \(perm) in \(brokerAddr) success.")
                print("\(description).")
                return
            }
            for address in try await admin.targets(brokerAddr: nil, cluster: clusterName) {
                try await update(admin, address: address, from: first)
                print("update topic perm from \(first.perm.rawValue) to \(perm) in \(address) success.")
            }
        }
    }

    /// UPDATE_AND_CREATE_TOPIC with the route's queue counts and the new permission.
    func update(_ admin: Admin, address: String, from queue: QueueData) async throws {
        _ = try await admin.updateTopic(topic, brokerAddr: address, cluster: nil, readQueueNums: queue.readQueueNums,
                                        writeQueueNums: queue.writeQueueNums, perm: Permission(rawValue: perm), order: false)
    }
}

struct TopicClusterList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topicClusterList", abstract: "get cluster info for topic")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String

    func run() async throws {
        try await withAdmin(options) { admin in
            for cluster in try await admin.topicClusters(topic) { print(cluster) }
        }
    }
}

struct AllocateMQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "allocateMQ", abstract: "Allocate MQ")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("t"), help: "topic name") var topic: String
    @Option(name: .customShort("i"), help: "ipList") var ips: String

    func run() async throws {
        try await withAdmin(options) { admin in
            let clients = ips.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !clients.contains(where: \.isEmpty) else { throw failArgument("-i must be a comma-separated list of client ids or IPs") }
            let queues = try await admin.topicRoute(topic).route.subscribeQueues(topic: topic)
            // RocketMQ's RebalanceResult as compact JSON: each client and the queues average allocation gives it.
            let result = clients.map { client -> (String, JSONValue) in
                (client, .array(PushConsumer.allocateAveragely(queues: queues, clients: clients, me: client).map(\.json)))
            }
            print(JSONValue.object([("result", .object(result))]).compactText)
        }
    }
}

struct CleanExpiredCQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cleanExpiredCQ", abstract: "Clean expired ConsumeQueue on broker.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "Broker address") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "clustername") var clusterName: String?

    func run() async throws { try await cleanQueues(options, code: RequestCode.cleanExpiredConsumeQueue, brokerAddr: brokerAddr, cluster: clusterName) }
}

struct CleanUnusedTopic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cleanUnusedTopic", abstract: "Clean unused topic on broker.")
    @OptionGroup var options: NameServerOption
    @Option(name: .customShort("b"), help: "Broker address") var brokerAddr: String?
    @Option(name: .customShort("c"), help: "cluster name") var clusterName: String?

    func run() async throws { try await cleanQueues(options, code: RequestCode.cleanUnusedTopic, brokerAddr: brokerAddr, cluster: clusterName) }
}

/// One broker (`-b`), the masters of a cluster (`-c`), or of every cluster; prints RocketMQ's `success`.
func cleanQueues(_ options: NameServerOption, code: Int32, brokerAddr: String?, cluster: String?) async throws {
    try await withAdmin(options) { admin in
        let addresses: [String]
        if brokerAddr != nil || cluster != nil {
            addresses = try await admin.targets(brokerAddr: brokerAddr, cluster: cluster)
        } else {
            addresses = try await admin.clusterInfo().filter { $0.brokerID == BrokerData.masterID }.map(\.address)
        }
        for address in addresses { try await admin.cleanQueues(address, code: code) }
        print("success")
    }
}
