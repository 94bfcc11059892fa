import Common
import NIOCore
import Remoting

/// What a broker asks of a running push consumer on its connection: rebalance now (NOTIFY_CONSUMER_IDS_CHANGED),
/// report yourself (GET_CONSUMER_RUNNING_INFO, answered on the same connection) and move your offsets
/// (RESET_CONSUMER_CLIENT_OFFSET, what `mqadmin resetOffsetByTime` and `skipAccumulatedMessage` send).
extension PushConsumer {
    func installServerRequestHandler() {
        client.serverRequests.body.withLock { handler in
            handler = { [weak self] command, channel in
                guard let self else { return }
                switch command.code {
                case RequestCode.notifyConsumerIdsChanged:
                    Task { await self.rebalance() }
                case RequestCode.getConsumerRunningInfo:
                    let info = self.runningInfo()
                    channel.writeAndFlush(RemotingCommand.response(to: command, code: ResponseCode.success, body: info.encode()), promise: nil)
                case RequestCode.resetConsumerClientOffset:
                    guard let body = try? ResetOffsetBody.decode(from: command.body), let topic = command.extFields["topic"] else { return }
                    Task { await self.resetOffsets(topic: topic, to: body.offsetTable) }
                default:
                    if !command.isOneway {
                        channel.writeAndFlush(RemotingCommand.response(
                            to: command, code: ResponseCode.requestCodeNotSupported,
                            remark: " request type \(command.code) not supported"), promise: nil)
                    }
                }
            }
        }
    }

    /// The consumer as RocketMQ's tools show it: settings as properties, subscriptions, and each held queue.
    /// `statusTable` (pull and consume rates) stays empty: this client does not measure them.
    public func runningInfo() -> ConsumerRunningInfo {
        let (subscriptions, queues, offsets, started) = state.withLock {
            (Array($0.subscriptions.values), $0.queues, $0.offsets, $0.startTimestamp)
        }
        var info = ConsumerRunningInfo()
        info.properties = [
            "consumerGroup": settings.group, "messageModel": settings.messageModel.rawValue,
            "consumeFromWhere": settings.consumeFromWhere.name, "pullBatchSize": "\(settings.pullBatchSize)",
            "consumeMessageBatchMaxSize": "\(settings.consumeMessageBatchMaxSize)",
            "pullThresholdForQueue": "\(settings.pullThresholdForQueue)", "maxReconsumeTimes": "\(settings.maxReconsumeTimes)",
            "suspendCurrentQueueTimeMillis": "\(settings.suspendCurrentQueueMillis)", "instanceName": client.config.instanceName,
            "namesrvAddr": client.config.namesrvAddr, "clientIP": "127.0.0.1",
            ConsumerRunningInfo.propNamesrvAddr: client.config.namesrvAddr,
            ConsumerRunningInfo.propConsumeType: "CONSUME_PASSIVELY",
            ConsumerRunningInfo.propConsumeOrderly: orderly ? "true" : "false",
            ConsumerRunningInfo.propClientVersion: MQVersion.description(MQVersion.current),
            ConsumerRunningInfo.propConsumerStartTimestamp: "\(started)",
        ]
        info.subscriptionSet = subscriptions.map(\.data)
        for (queue, process) in queues { info.mqTable[queue] = process.info(commitOffset: offsets[queue] ?? -1) }
        return info
    }

    /// Moves the queues of `topic` in `table` to the given offsets (RocketMQ's `MQClientInstance.resetOffset`): their
    /// pulls stop, the new offsets are committed (clustering) or saved (broadcasting), then a rebalance starts them
    /// again from there. Queues this consumer does not hold are left to their holder.
    func resetOffsets(topic: String, to table: [MessageQueue: Int64]) async {
        let held = state.withLock { state in state.queues.filter { $0.key.topic == topic && table[$0.key] != nil } }
        for (_, process) in held { process.drop() }
        for (_, process) in held { await process.stopped() }
        state.withLock { state in
            for (queue, _) in held {
                state.queues[queue] = nil
                state.offsets[queue] = table[queue]
            }
        }
        if settings.messageModel == .broadcasting {
            saveLocalOffsets()
        } else {
            for (queue, _) in held { try? await client.updateOffset(queue, group: settings.group, offset: table[queue]!) }
        }
        await rebalance()
    }
}
