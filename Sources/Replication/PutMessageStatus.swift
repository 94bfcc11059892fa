import CommitLog

/// How a put ended (RocketMQ's `PutMessageStatus`): the one answer every way into the store gives. The broker
/// maps it to a response code in one place.
public enum PutMessageStatus: String, Sendable, CaseIterable {
    /// Stored, and as durable and replicated as the modes promise.
    case putOK = "PUT_OK"
    /// Stored, but the flush did not confirm within `syncFlushTimeout` (SYNC_FLUSH).
    case flushDiskTimeout = "FLUSH_DISK_TIMEOUT"
    /// Stored, but no slave confirmed it within the slave timeout (SYNC_MASTER).
    case flushSlaveTimeout = "FLUSH_SLAVE_TIMEOUT"
    /// Stored, but no slave is connected, or the best one is too far behind (SYNC_MASTER).
    case slaveNotAvailable = "SLAVE_NOT_AVAILABLE"
    /// DLedger: appended on the leader, but not committed by a quorum within the wait, or leadership moved
    /// first; the entry may still commit (RocketMQ 5's name; response code 1, SYSTEM_ERROR, as RocketMQ answers).
    case inSyncReplicasNotEnough = "IN_SYNC_REPLICAS_NOT_ENOUGH"
    /// Not stored: the store is closed, the disk full, a flush failed, the broker a slave, or too many waits.
    case serviceNotAvailable = "SERVICE_NOT_AVAILABLE"
    /// Not stored: the message breaks a limit (size, topic length, properties length).
    case messageIllegal = "MESSAGE_ILLEGAL"
    /// Not stored: a new commit-log file could not be created.
    case createMappedFileFailed = "CREATE_MAPEDFILE_FAILED"
    /// Not stored: anything else.
    case unknownError = "UNKNOWN_ERROR"

    /// Whether the message is in the log (true for the three "stored, but" answers).
    public var isStored: Bool {
        switch self {
        case .putOK, .flushDiskTimeout, .flushSlaveTimeout, .slaveNotAvailable: true
        default: false
        }
    }

    /// The status of a put the store refused.
    public init(_ error: StoreError) {
        switch error.code {
        case .messageTooLarge, .topicTooLong, .propertiesTooLong, .messageIllegal: self = .messageIllegal
        case .diskFull, .storeClosed, .flushFailed, .waitersFull, .locked, .notLeader: self = .serviceNotAvailable
        case .createMappedFileFailed: self = .createMappedFileFailed
        case .corruptRecord, .io, .badConfig, .offsetMismatch: self = .unknownError
        }
    }
}

/// A put that did not store the message: its status and what happened.
public struct PutFailure: Error, CustomStringConvertible, Sendable {
    public var status: PutMessageStatus
    public var message: String

    public init(_ status: PutMessageStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public init(_ error: StoreError) {
        self.init(PutMessageStatus(error), error.description)
    }

    public var description: String { "\(status.rawValue): \(message)" }
}

/// `brokerRole`: what a broker does with puts and whom it waits for.
public enum BrokerRole: String, Sendable, CaseIterable {
    /// Answers once the message is stored (and flushed, under SYNC_FLUSH); slaves catch up later.
    case asyncMaster = "ASYNC_MASTER"
    /// Answers once a slave has the message too.
    case syncMaster = "SYNC_MASTER"
    /// Takes no puts from clients: its log is a copy of its master's.
    case slave = "SLAVE"
}

/// The replication side of the put pipeline (implemented by the HA service on a SYNC_MASTER).
public protocol ReplicaAcknowledging: AnyObject, Sendable {
    /// Asks to be told (through the handler installed with `onReplicated`) when a slave has every byte before `offset`.
    func awaitReplica(upTo offset: UInt64, token: UInt64) -> ReplicaWait
    /// Installs the one handler that hears pending waits end. Call once, before traffic.
    func onReplicated(_ handler: @escaping @Sendable (_ token: UInt64, _ status: ReplicaStatus) -> Void)
}

extension HAService: ReplicaAcknowledging {}
