#if canImport(Glibc)
import Glibc
#endif
import Client
import Common
import Testing
import TestSupport

/// mqadmin's config, permission and NameServer commands against a real NameServer and broker: what each prints is
/// RocketMQ's, and each change is visible where RocketMQ makes it visible (the broker's config file, the route's
/// permissions and `orderTopicConf`, the NameServer's KV table). Bad arguments are one `mqadmin:` line, exit 1.
@Suite(.serialized) struct MQAdminConfigTests {
    func route(_ n: [String], _ topic: String) throws -> String { try runMQAdmin(["topicRoute"] + n + ["-t", topic]).output }

    @Test func brokerConfigAndPermissionsChangeWhereRocketMQChangesThem() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try runMQAdmin(["updateTopic"] + n + ["-t", "PermTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)

        let config = try runMQAdmin(["getBrokerConfig"] + n + ["-b", broker.address])
        #expect(config.output.hasPrefix("============\(broker.address)============"), "\(config.output)")
        #expect(rows(config.output, startingWith: "brokerName").first == ["brokerName", "=", "broker-t"], "\(config.output)")
        let byCluster = try runMQAdmin(["getBrokerConfig"] + n + ["-c", "DefaultCluster"])
        #expect(byCluster.output.hasPrefix("============Master: \(broker.address)============"), "\(byCluster.output)")

        // brokerPermission applies at once: the broker re-registers its topics read-only, and the file keeps it.
        let readOnly = try runMQAdmin(["updateBrokerConfig"] + n + ["-b", broker.address, "-k", "brokerPermission", "-v", "4"])
        #expect(readOnly.status == 0 && readOnly.output.contains("update broker config success, \(broker.address)"), "\(readOnly.output)")
        #expect(await eventually(10) { (try? route(n, "PermTopic").contains("\"perm\":4")) == true })
        #expect(TextFile.read(broker.directory.path + "/broker.conf")?.contains("brokerPermission=4\n") == true)
        #expect(rows(try runMQAdmin(["getBrokerConfig"] + n + ["-b", broker.address]).output, startingWith: "brokerPermission").first?.last == "4")
        #expect(try runMQAdmin(["updateBrokerConfig"] + n + ["-b", broker.address, "-k", "brokerPermission", "-v", "6"]).status == 0)
        #expect(await eventually(10) { (try? route(n, "PermTopic").contains("\"perm\":6")) == true })

        let wipe = try runMQAdmin(["wipeWritePerm"] + n + ["-b", "broker-t"])
        #expect(wipe.output.hasPrefix("wipe write perm of broker[broker-t] in name server[\(broker.nameServer.address)] OK, "), "\(wipe.output)")
        #expect(try route(n, "PermTopic").contains("\"perm\":4"))
        let add = try runMQAdmin(["addWritePerm"] + n + ["-b", "broker-t"])
        #expect(add.output.hasPrefix("add write perm of broker[broker-t] in name server[\(broker.nameServer.address)] OK, "), "\(add.output)")
        #expect(try route(n, "PermTopic").contains("\"perm\":6"))

        let perm = try runMQAdmin(["updateTopicPerm"] + n + ["-t", "PermTopic", "-b", broker.address, "-p", "4"])
        #expect(perm.output.contains("update topic perm from 6 to 4 in \(broker.address) success."), "\(perm.output)")
        #expect(perm.output.contains("TopicConfig [topicName=PermTopic, readQueueNums=2, writeQueueNums=2, perm=R--"), "\(perm.output)")
        #expect(await eventually(10) { (try? route(n, "PermTopic").contains("\"perm\":4")) == true })
        #expect(try runMQAdmin(["updateTopicPerm"] + n + ["-t", "PermTopic", "-b", broker.address, "-p", "4"]).output
            .contains("new perm equals to the old one!"))

        #expect(try runMQAdmin(["topicClusterList"] + n + ["-t", "PermTopic"]).output == "DefaultCluster")
        let allocation = try runMQAdmin(["allocateMQ"] + n + ["-t", "PermTopic", "-i", "a,b"])
        #expect(allocation.output == "{\"result\":{\"a\":[{\"brokerName\":\"broker-t\",\"queueId\":0,\"topic\":\"PermTopic\"}],"
            + "\"b\":[{\"brokerName\":\"broker-t\",\"queueId\":1,\"topic\":\"PermTopic\"}]}}", "\(allocation.output)")
    }

    @Test func nameServerSettingsKVAndOrderConf() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        #expect(try runMQAdmin(["updateTopic"] + n + ["-t", "OrderTopic", "-c", "DefaultCluster", "-r", "2", "-w", "2"]).status == 0)

        #expect(try runMQAdmin(["updateKvConfig"] + n + ["-s", "NS1", "-k", "k1", "-v", "v1"]).output == "create or update kv config to namespace success.")
        let admin = Admin(namesrvAddr: broker.nameServer.address)
        #expect(try await admin.kvConfig(namespace: "NS1", key: "k1") == "v1")
        #expect(try runMQAdmin(["deleteKvConfig"] + n + ["-s", "NS1", "-k", "k1"]).output == "delete kv config from namespace success.")
        #expect(try await admin.kvConfig(namespace: "NS1", key: "k1") == nil)
        await admin.shutdown()

        let settings = try runMQAdmin(["getNamesrvConfig"] + n)
        #expect(settings.output.hasPrefix("============\(broker.nameServer.address)============"), "\(settings.output)")
        #expect(rows(settings.output, startingWith: "orderMessageEnable").first?.last == "false", "\(settings.output)")

        let put = try runMQAdmin(["updateOrderConf"] + n + ["-t", "OrderTopic", "-m", "put", "-v", "broker-t:2"])
        #expect(put.output == "update orderConf success. topic=[OrderTopic], orderConf=[broker-t:2]", "\(put.output)")
        #expect(try runMQAdmin(["updateOrderConf"] + n + ["-t", "OrderTopic", "-m", "get"]).output
            .hasPrefix("get orderConf success. topic=[OrderTopic], orderConf=[broker-t:2]"))
        #expect(!(try route(n, "OrderTopic")).contains("orderTopicConf"))  // orderMessageEnable is off by default
        let enable = try runMQAdmin(["updateNamesrvConfig"] + n + ["-k", "orderMessageEnable", "-v", "true"])
        #expect(enable.output == "update name server config success![\(broker.nameServer.address)]\norderMessageEnable : true", "\(enable.output)")
        #expect(try route(n, "OrderTopic").contains("\t\"orderTopicConf\":\"broker-t:2\""))
        #expect(try runMQAdmin(["updateOrderConf"] + n + ["-t", "OrderTopic", "-m", "delete"]).output == "delete orderConf success. topic=[OrderTopic]")
        #expect(!(try route(n, "OrderTopic")).contains("orderTopicConf"))
    }

    @Test func badConfigArgumentsAreOneLineErrors() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let cases: [([String], String)] = [
            (["updateBrokerConfig", "-b", broker.address, "-k", "noSuchKey", "-v", "1"], "noSuchKey is not a broker setting"),
            (["updateBrokerConfig", "-b", broker.address, "-k", "maxMessageSize", "-v", "abc"], "maxMessageSize"),
            (["updateBrokerConfig", "-k", "brokerPermission", "-v", "6"], "give a broker address"),
            (["getBrokerConfig", "-c", "NoCluster"], "no broker in cluster NoCluster"),
            (["updateTopicPerm", "-t", "TBW102", "-b", broker.address, "-p", "5"], "-p must be 2"),
            (["updateTopicPerm", "-t", "NoTopic", "-c", "DefaultCluster", "-p", "6"], "NoTopic"),
            (["updateNamesrvConfig", "-k", "kvConfigPath", "-v", "/tmp/x"], "Can not update config path"),
            (["updateNamesrvConfig", "-k", "listenPort", "-v", "1"], "takes effect only at start"),
            (["updateNamesrvConfig", "-k", "orderMessageEnable", "-v", "maybe"], "must be true or false"),
            (["updateOrderConf", "-t", "T", "-m", "put", "-v", "broker-a"], "brokerName:queueNums"),
            (["updateOrderConf", "-t", "T", "-m", "list"], "-m must be put, get or delete"),
            (["updateOrderConf", "-t", "NoConf", "-m", "get"], "no order conf"),
            (["allocateMQ", "-t", "TBW102", "-i", "a,,b"], "-i must be"),
            (["topicClusterList", "-t", "NoTopic"], "NoTopic"),
            (["wipeWritePerm", "-b", "broker-t", "-n", "127.0.0.1:\(freePort())"], "Failed"),
            (["addWritePerm", "-b", "broker-t", "-n", "127.0.0.1:\(freePort())"], "Failed"),
            (["updateKvConfig", "-s", "", "-k", "k", "-v", "v"], "-s and -k must not be empty"),
            (["deleteKvConfig", "-s", "NS", "-k", ""], "-s and -k must not be empty"),
            (["getNamesrvConfig", "-n", "127.0.0.1:\(freePort())"], "mqadmin: "),
            (["cleanExpiredCQ", "-c", "NoCluster"], "no master broker in cluster NoCluster"),
            (["brokerStatus", "-c", "NoCluster"], "no broker in cluster NoCluster"),
            (["clusterList", "-n", "127.0.0.1:\(freePort())"], "cannot reach NameServer"),
        ]
        for (arguments, reason) in cases {
            let result = try runMQAdmin(arguments.contains("-n") ? arguments : [arguments[0]] + n + Array(arguments.dropFirst()))
            #expect(result.status == 1, "\(arguments): \(result.output)")
            let lines = result.output.split(separator: "\n")
            #expect(result.output.contains(reason), "\(arguments): \(result.output)")
            if !["wipeWritePerm", "addWritePerm"].contains(arguments[0]) {  // RocketMQ's "Failed" line, then the reason
                #expect(lines.count == 1 && lines.first?.hasPrefix("mqadmin: ") == true, "\(arguments): \(result.output)")
            }
        }
    }
}

/// `cleanUnusedTopic` deletes the consume queues of a topic the broker no longer has (its config removed while the
/// broker was stopped), `cleanExpiredCQ` keeps queues that still point into the commit log, and both print `success`.
@Suite(.serialized) struct MQAdminCleanTests {
    @Test func cleanUnusedTopicDeletesQueuesOfTopicsWithoutConfig() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        for topic in ["UnusedTopic", "LiveTopic"] {
            #expect(try runMQAdmin(["updateTopic"] + n + ["-t", topic, "-b", broker.address, "-r", "1", "-w", "1"]).status == 0)
            #expect(try runMQAdmin(["sendMessage"] + n + ["-t", topic, "-p", "body"]).status == 0)
        }
        let queues = broker.directory.path + "/store/consumequeue/"
        // Dispatch builds the queues shortly after the sends.
        #expect(await eventually(10) { access(queues + "UnusedTopic/0", F_OK) == 0 && access(queues + "LiveTopic/0", F_OK) == 0 })
        #expect(broker.process?.terminate() == 0)
        let topicsPath = broker.directory.path + "/store/config/topics.json"
        var topics = try TopicConfigSerializeWrapper.decode(from: TextFile.read(topicsPath) ?? "")
        topics.topicConfigTable["UnusedTopic"] = nil
        #expect(TextFile.writeAtomically(topicsPath, topics.json.rendered()))
        _ = unlink(topicsPath + ".journal")
        try broker.start()
        #expect(access(queues + "UnusedTopic/0", F_OK) == 0, "the store still has the queue")

        let clean = try runMQAdmin(["cleanUnusedTopic"] + n + ["-b", broker.address])
        #expect(clean.status == 0 && clean.output == "success", "\(clean.output)")
        #expect(access(queues + "UnusedTopic", F_OK) != 0)
        #expect(access(queues + "LiveTopic/0", F_OK) == 0)
        let expired = try runMQAdmin(["cleanExpiredCQ"] + n + ["-c", "DefaultCluster"])
        #expect(expired.status == 0 && expired.output == "success", "\(expired.output)")
        #expect(access(queues + "LiveTopic/0", F_OK) == 0)
        #expect(try runMQAdmin(["consumeMessage"] + n + ["-t", "LiveTopic"]).output.contains("Consumed 1 message(s)."))
        let nowhere = try runMQAdmin(["cleanUnusedTopic"] + n + ["-c", "NoCluster"])
        #expect(nowhere.status == 1 && nowhere.output == "mqadmin: bad response: no master broker in cluster NoCluster", "\(nowhere.output)")
    }
}
