/// An operating error of the store (bad input, full disk, closed store, corrupt file, failed I/O).
/// Programmer errors trap instead. The text says what, where and what happens next, and is built only
/// on the error path.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case messageTooLarge, topicTooLong, propertiesTooLong, diskFull, storeClosed, corruptRecord
        /// A message the store must not keep: a zero byte in topic or properties, a queue id or port out of range.
        case messageIllegal
        case flushFailed, createMappedFileFailed, waitersFull, io, locked, badConfig
        /// Replicated bytes that do not continue the log where it ends (`CommitLog.appendReplicated`).
        case offsetMismatch
        /// The append observer refused the append (DLedger: this member does not lead, or is not ready to).
        case notLeader
    }
    public var code: Code
    public var message: String
    /// The syscall that failed, when one did.
    public var cause: SyscallError?

    public init(_ code: Code, _ message: String, cause: SyscallError? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        cause.map { "\(code): \(message) (\($0))" } ?? "\(code): \(message)"
    }
}

/// What a put's durability wait ended with (RocketMQ's `PutMessageStatus` for the flush part).
public enum DurabilityStatus: UInt8, Sendable {
    /// Durable as the flush mode promises.
    case putOK
    /// Stored, but not confirmed durable within `syncFlushTimeout` (response code 10).
    case flushDiskTimeout
    /// `fdatasync` failed: the store refuses appends from now on.
    case flushFailed
}
