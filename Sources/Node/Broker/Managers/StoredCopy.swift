import CommitLog
import IndexFile
import NIOCore
import Replication

/// A stored message put again under another topic or queue (a delayed message coming due, a retry, a dead
/// letter): the record's body and born fields, new topic and properties, through the put pipeline.
struct StoredCopy {
    let record: StoredRecord
    var queueID: Int32
    var reconsumeTimes: Int32
    var sysFlag: Int32
    /// A committed transactional message: its half message's physical offset.
    var preparedTransactionOffset: Int64 = 0

    init(_ record: StoredRecord) {
        self.record = record
        queueID = record.header.queueID
        reconsumeTimes = record.header.reconsumeTimes
        sysFlag = record.header.sysFlag
    }

    func put(through pipeline: PutPipeline, topic: String, properties: [UInt8], on eventLoop: (any EventLoop)?)
        -> PutOutcome<PutMessageResult> {
        let header = record.header
        let topicBytes = Array(topic.utf8)
        return topicBytes.withUnsafeBytes { topic in
            properties.withUnsafeBytes { properties in
                pipeline.put(MessageView(topic: topic, body: record.body, properties: properties, queueID: queueID, flag: header.flag,
                                         sysFlag: sysFlag, bornTimestamp: header.bornTimestamp, bornHost: header.bornHost,
                                         reconsumeTimes: reconsumeTimes, preparedTransactionOffset: preparedTransactionOffset),
                             on: eventLoop)
            }
        }
    }
}
