import CommitLog
import Common
import IndexFile

/// The check service's round (RocketMQ's `TransactionalMessageCheckService` calling `check`).
extension TransactionalMessageService {
    /// What to do after looking at one half message.
    enum CheckStep: Equatable {
        /// Look at the next half message.
        case next
        /// Stop this round here (the message is too young, or the store refused a put): the next round starts here.
        case stop
    }

    /// One scan of the half queue from the saved progress: every half message without a decision that is older
    /// than its immunity is put back with TRANSACTION_CHECK_TIMES + 1 and its producer group asked about it.
    /// A round ends at the first message too young to check, at the queue's end or after `roundMillisMax`.
    func checkRound(now: Int64 = currentTimeMillis(), roundMillisMax: UInt64 = 60_000) {
        guard isWritable else { return }
        let deadline = monotonicNanos() + roundMillisMax * 1_000_000
        let topic = TopicValidator.transactionHalfTopic
        var offset = state.withLock { state in
            loadOps(&state)
            return max(state.halfProgress, store.minOffset(topic: topic, queueID: Self.halfQueueID))
        }
        let end = store.maxOffset(topic: topic, queueID: Self.halfQueueID)
        // The lock is taken per message, so END_TRANSACTION (on the event loops) never waits for a whole round.
        while offset < end, monotonicNanos() < deadline {
            let step = state.withLock { state -> CheckStep in
                guard !state.decided.contains(offset),
                      let record = store.record(topic: topic, queueID: Self.halfQueueID, offset: offset) else { return .next }
                return check(record, now: now, state: &state)
            }
            guard step == .next else { break }
            offset += 1
        }
        state.withLock { state in advance(to: offset, state: &state) }
    }

    /// Looks at one undecided half message.
    func check(_ half: StoredRecord, now: Int64, state: inout State) -> CheckStep {
        var properties = MessageProperties(bytes: half.properties)
        let checkTimes = properties[MessageConst.transactionCheckTimes].flatMap { Int($0) } ?? 0
        if checkTimes >= settings.transactionCheckMax {
            return discard(half, properties: properties) ? .next : .stop
        }
        let age = now - half.header.bornTimestamp
        let immunitySeconds = properties[MessageConst.checkImmunityTimeInSeconds].flatMap { Int64($0) }
        let immunityMillis = immunitySeconds.map { $0 * 1000 } ?? settings.transactionTimeOutMillis
        // A message born in the future (a producer's clock ahead of ours) is checked at once, as RocketMQ does.
        if age >= 0, age < immunityMillis { return .stop }
        if let key = properties[MessageConst.uniqueClientMessageIDKeyIndex], committedAlready(key: key, properties: properties, state: state) {
            // Committed through another copy (or before a crash that lost the op): record it, ask nobody.
            recordDecision(half, properties: properties, state: &state)
            return .next
        }
        properties[MessageConst.transactionCheckTimes] = "\(checkTimes + 1)"
        switch putBack(half, properties: properties) {
        case .failure(let failure) where failure.status == .messageIllegal:
            // The copy can never be stored (its properties would grow past the limit): give up on it now rather
            // than hold the queue behind it.
            log("transaction: half message \(half.header.queueOffset) cannot be put back: \(failure)")
            return discard(half, properties: MessageProperties(bytes: half.properties)) ? .next : .stop
        case .failure(let failure):
            log("transaction: cannot put back half message \(half.header.queueOffset): \(failure); checked next round")
            return .stop
        case .success(let renewed):
            sendCheck(half, properties: properties, renewed: renewed)
            return .next
        }
    }

    /// Saves the half queue's progress, moves the op queue's past ops that only name half offsets below it, and
    /// forgets decisions below it.
    func advance(to halfOffset: Int64, state: inout State) {
        guard halfOffset > state.halfProgress else { return }
        state.halfProgress = halfOffset
        state.decided = state.decided.filter { $0 >= halfOffset }
        while state.opProgress < state.opScanned {
            if let named = opHalfOffset(at: state.opProgress), named >= halfOffset { break }
            state.opProgress += 1
        }
        let group = Self.consumerGroup
        offsets.commit(group: group, topic: TopicValidator.transactionHalfTopic, queueID: Self.halfQueueID, offset: halfOffset)
        offsets.commit(group: group, topic: TopicValidator.transactionOpHalfTopic, queueID: Self.halfQueueID, offset: state.opProgress)
    }
}
