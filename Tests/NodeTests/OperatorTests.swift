#if canImport(Glibc)
import Glibc
#endif
import CommitLog
import Client
import Common
import NIOCore
import NIOPosix
import Remoting
import Testing
import TestSupport

/// What an operator sees when something is wrong: one line saying what failed and what to do, exit status 1,
/// no table header; subcommands by any case; topic rules checked by mqadmin and the broker; a port in use named
/// before the broker recovers its store; RocketMQ keys without effect warned about by file and line; `-p` prints
/// every key. Real `mqadmin`, `mqbroker` and `mqnamesrv` processes.
@Suite(.serialized) struct OperatorTests {
    func run(_ name: String, _ arguments: [String], seconds: Double = 30) throws -> (status: Int32?, output: String) {
        guard let binary = builtExecutable(name) else { throw StoreError(.io, "\(name) is not built") }
        return try ChildProcess.run([binary] + arguments, seconds: seconds)
    }

    func lines(_ output: String) -> [String] { output.split(separator: "\n").map(String.init) }

    @Test func unreachableNameServerIsOneLineWithExitStatus1AndNoHeader() throws {
        let port = freePort()
        for command in [["clusterList"], ["topicStatus", "-t", "T"], ["topicList"], ["queryMsgByKey", "-t", "T", "-k", "k"], ["statusOf"]] {
            let result = try run("mqadmin", command + ["-n", "127.0.0.1:\(port)"])
            #expect(result.status == 1, "\(command): \(result.output)")
            if command == ["statusOf"] {
                #expect(result.output == "mqadmin: no subcommand 'statusOf'; `mqadmin --help` lists them", "\(result.output)")
            } else {
                #expect(result.output == "mqadmin: cannot reach NameServer 127.0.0.1:\(port) (connection refused)", "\(command): \(result.output)")
            }
        }
        let two = try run("mqadmin", ["topicList", "-n", "127.0.0.1:\(port);127.0.0.1:\(port + 1)"])
        #expect(two.status == 1 && lines(two.output).count == 1, "\(two.output)")
        #expect(two.output.hasPrefix("mqadmin: cannot reach any NameServer: 127.0.0.1:\(port) (connection refused); "), "\(two.output)")
        // A broker that is gone: the broker's address and the reason, nothing of SwiftNIO's.
        let haStatus = try run("mqadmin", ["haStatus", "-b", "127.0.0.1:\(port)", "-n", "127.0.0.1:\(port)"])
        #expect(haStatus.status == 1 && haStatus.output == "mqadmin: cannot reach 127.0.0.1:\(port) (connection refused)", "\(haStatus.output)")
    }

    @Test func subcommandsMatchAnyCaseAndBadArgumentsAreOneLine() throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address]
        let lower = try run("mqadmin", ["topiclist"] + n)
        let upper = try run("mqadmin", ["TOPICLIST"] + n)
        #expect(lower.status == 0 && upper.status == 0, "\(lower.output) \(upper.output)")
        #expect(lower.output.contains("TBW102") && upper.output.contains("TBW102"))
        let unknown = try run("mqadmin", ["updateSubGroupz"] + n + ["-g", "G"])
        #expect(unknown.status == 1 && unknown.output == "mqadmin: no subcommand 'updateSubGroupz'; `mqadmin --help` lists them")
        let missing = try run("mqadmin", ["updatetopic"] + n)
        #expect(missing.status == 1 && lines(missing.output).count == 1, "\(missing.output)")
        #expect(missing.output.hasPrefix("mqadmin: ") && missing.output.contains("-t") && missing.output.contains("mqadmin updateTopic --help"))
        let help = try run("mqadmin", ["--help"])
        #expect(help.status == 0 && help.output.contains("queryMsgByUniqueKey") && help.output.contains("checkMsgSendRT"))
        let commandHelp = try run("mqadmin", ["HELP", "querymsgbyid"])
        #expect(commandHelp.status == 0 && commandHelp.output.contains("USAGE: mqadmin queryMsgById"), "\(commandHelp.output)")
    }

    @Test func topicRulesAreCheckedByMQAdminAndEnforcedByTheBroker() async throws {
        let broker = try RunningBroker()
        let n = ["-n", broker.nameServer.address, "-c", "DefaultCluster"]
        let refusals: [([String], String)] = [
            (["-t", "Q", "-r", "0", "-w", "8"], "readQueueNums must be within 1...1024, not 0"),
            (["-t", "Q", "-r", "8", "-w", "99999"], "writeQueueNums must be within 1...1024, not 99999"),
            (["-t", "Q", "-p", "7"], "perm must be 2 (write), 4 (read) or 6 (read and write), not 7"),
            (["-t", "bad topic!"], "contains illegal characters"),
            (["-t", String(repeating: "x", count: 128)], "longer than topic max length 127"),
            (["-t", "SCHEDULE_TOPIC_XXXX"], "is conflict with system topic"),
            (["-t", "rmq_sys_mine"], "is conflict with system topic"),
        ]
        for (arguments, reason) in refusals {
            let result = try run("mqadmin", ["updateTopic"] + n + arguments)
            #expect(result.status == 1 && lines(result.output).count == 1 && result.output.contains(reason), "\(arguments): \(result.output)")
        }
        let good = try run("mqadmin", ["updateTopic"] + n + ["-t", "Fine-Topic_1", "-r", "4", "-w", "4", "-p", "4"])
        #expect(good.status == 0, "\(good.output)")
        // The broker refuses the same requests from any client, not only mqadmin.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RemotingClient(group: group)
        for (fields, reason) in [(["perm": "7"], "perm must be 2"), (["readQueueNums": "0"], "readQueueNums must be"),
                                 (["topic": "TBW102"], "conflict with system topic")] {
            let request = RemotingCommand(code: RequestCode.updateAndCreateTopic, opaque: 0,
                                          extFields: ["topic": "Direct", "readQueueNums": "4", "writeQueueNums": "4", "perm": "6"]
                                              .merging(fields) { $1 })
            let response = try await client.invoke(broker.address, request)
            #expect(response.code == ResponseCode.systemError && response.remark?.contains(reason) == true, "\(fields): \(response.remark ?? "")")
        }
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test func aPortInUseIsNamedBeforeRecoveryRuns() throws {
        let port = freePort()
        guard let holder = ListeningSocket(port: port) else { throw StoreError(.io, "cannot hold port \(port)") }
        defer { withExtendedLifetime(holder) {} }
        let directory = TemporaryDirectory("port-in-use")
        let conf = directory.path + "/broker.conf"
        writeText(conf, "brokerName=b\nlistenPort=\(port)\nstorePathRootDir=\(directory.path)/store\n")
        let broker = try run("mqbroker", ["-c", conf])
        #expect(broker.status == 1, "\(broker.output)")
        #expect(broker.output.contains("mqbroker: cannot listen on port \(port) (listenPort): address already in use; "
                                       + "stop the process that holds it, or set listenPort in \(conf)"), "\(broker.output)")
        // Nothing of the store was opened: no recovery ran, not even a log directory was made.
        #expect(access(directory.path + "/store", F_OK) != 0, "the store directory exists")
        let haPort = freePort()
        guard let haHolder = ListeningSocket(port: haPort) else { throw StoreError(.io, "cannot hold port \(haPort)") }
        defer { withExtendedLifetime(haHolder) {} }
        writeText(conf, "brokerName=b\nlistenPort=\(freePort())\nhaListenPort=\(haPort)\nstorePathRootDir=\(directory.path)/store\n")
        let ha = try run("mqbroker", ["-c", conf])
        #expect(ha.status == 1 && ha.output.contains("cannot listen on port \(haPort) (haListenPort)"), "\(ha.output)")
        writeText(directory.path + "/namesrv.properties", "listenPort=\(port)\n")
        let namesrv = try run("mqnamesrv", ["-c", directory.path + "/namesrv.properties", "--logs-dir", directory.path + "/logs"])
        #expect(namesrv.status == 1 && namesrv.output.contains("mqnamesrv: cannot listen on port \(port) (listenPort)"), "\(namesrv.output)")
    }

    @Test func rocketMQKeysWithoutEffectAreWarnedWithTheirLineAndDashPPrintsEveryKey() throws {
        let directory = TemporaryDirectory("unsupported-keys")
        let conf = directory.path + "/broker.conf"
        let root = directory.path + "/store"
        writeText(conf, """
            brokerName=b
            storePathRootDir=\(root)
            brokerIP2=127.0.0.2
            haListenPort=\(freePort())
            brokerPermission=4
            longPollingEnable=false
            longPollingEnable=true
            storePathIndex=/elsewhere/index
            storeCheckpoint=\(root)/checkpoint
            sendMessageThreadPoolNums=16
            transientStorePoolSize=5
            surpriseKey=1
            transientStorePoolEnable=false
            commitCommitLogLeastPages=64
            commitIntervalCommitLog=20
            """)
        let printed = try run("mqbroker", ["-c", conf, "-p"])
        #expect(printed.status == 0, "\(printed.output)")
        let warnings = lines(printed.output).filter { $0.contains("warning:") }
        let unsupported = "is a RocketMQ broker key not supported here, ignored"
        #expect(warnings.contains("mqbroker: warning: \(conf):6: longPollingEnable \(unsupported)"), "\(warnings)")
        #expect(warnings.contains("mqbroker: warning: \(conf):8: storePathIndex \(unsupported)"), "\(warnings)")
        #expect(warnings.contains("mqbroker: warning: \(conf):10: sendMessageThreadPoolNums \(unsupported)"), "\(warnings)")
        #expect(warnings.contains("mqbroker: warning: \(conf):11: transientStorePoolSize \(unsupported)"), "\(warnings)")
        #expect(warnings.contains("mqbroker: warning: \(conf):12: unknown key surpriseKey, ignored"), "\(warnings)")
        // Honoured keys, and values that change nothing here (line 7, 9), are not warned about.
        #expect(warnings.count == 5, "\(warnings)")
        let values = Dictionary(lines(printed.output).filter { !$0.contains("warning:") }.compactMap { line -> (String, String)? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }, uniquingKeysWith: { first, _ in first })
        #expect(values.count >= 50, "\(values.keys.sorted())")
        #expect(values["brokerIP2"] == "127.0.0.2" && values["brokerPermission"] == "4" && values["storePathRootDir"] == root)
        #expect(values["flushDiskType"] == "ASYNC_FLUSH" && values["maxMessageSize"] == "4194304" && values["deleteWhen"] == "04", "\(values)")
        #expect(values["transientStorePoolEnable"] == "false", "\(values)")  // taken (line 13): the write buffer is off
        // The io_uring ring's coalescing under ASYNC_FLUSH is read (lines 14, 15), not warned about.
        #expect(values["commitCommitLogLeastPages"] == "64" && values["commitIntervalCommitLog"] == "20", "\(values)")
        writeText(conf, "storePathRootDir=\(root)\nflushDiskType=SYNC_FLUSH\ntransientStorePoolEnable=yes\n")
        let bad = try run("mqbroker", ["-c", conf, "-p"])
        #expect(bad.status == 2 && bad.output.contains("\(conf):3") && bad.output.contains("transientStorePoolEnable")
                && bad.output.contains("must be true or false"), "\(bad.output)")
        writeText(conf, "storePathRootDir=\(root)\nflushDiskType=SYNC_FLUSH\n")
        let syncDefault = try run("mqbroker", ["-c", conf, "-p"])
        #expect(syncDefault.status == 0 && syncDefault.output.contains("transientStorePoolEnable=true\n"), "\(syncDefault.output)")
        #expect(syncDefault.output.contains("groupCommitLingerMicros=0\n"), "\(syncDefault.output)")  // off by default
        writeText(conf, "storePathRootDir=\(root)\nflushDiskType=SYNC_FLUSH\ngroupCommitLingerMicros=-1\n")
        let badLinger = try run("mqbroker", ["-c", conf, "-p"])
        #expect(badLinger.status == 2 && badLinger.output.contains("\(conf):3") && badLinger.output.contains("groupCommitLingerMicros"),
                "\(badLinger.output)")
        let namesrvConf = directory.path + "/namesrv.properties"
        writeText(namesrvConf, "listenPort=9999\nserverWorkerThreads=8\norderMessageEnable=false\n")
        let namesrv = try run("mqnamesrv", ["-c", namesrvConf, "-p"])
        #expect(namesrv.status == 0 && namesrv.output.contains("listenPort=9999\n") && namesrv.output.contains("brokerChannelExpiredTime=120000"),
                "\(namesrv.output)")
        #expect(namesrv.output.contains("\(namesrvConf):2: serverWorkerThreads is a RocketMQ NameServer key not supported here, ignored"))
        // orderMessageEnable is read (routes carry orderTopicConf while it is on): printed, not warned about.
        #expect(namesrv.output.contains("orderMessageEnable=false\n") && !namesrv.output.contains("orderMessageEnable is a"), "\(namesrv.output)")
    }
}
