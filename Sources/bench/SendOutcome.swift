import Client

/// What one send came back as. The first four are RocketMQ's `SendStatus`: the broker answered, and only
/// SEND_OK means the message is stored with every guarantee the broker was asked for (a FLUSH_DISK_TIMEOUT
/// message is stored but not known to be on disk). The last two are RocketMQ's benchmark failure counters:
/// the broker answered with an error code (RESPONSE_FAILED), or no answer came at all: timeout, connection
/// closed or refused (SEND_FAILED). Only SEND_OK counts toward throughput and the send-RT histogram.
enum SendOutcome: Int, CaseIterable, Sendable {
    case sendOK, flushDiskTimeout, flushSlaveTimeout, slaveNotAvailable, responseFailed, sendFailed

    init(_ status: SendStatus) {
        switch status {
        case .sendOK: self = .sendOK
        case .flushDiskTimeout: self = .flushDiskTimeout
        case .flushSlaveTimeout: self = .flushSlaveTimeout
        case .slaveNotAvailable: self = .slaveNotAvailable
        }
    }

    /// The name in JSON (`status_counts`) and in tables: `SendStatus`'s spelling, then the two failures.
    var name: String {
        switch self {
        case .sendOK: SendStatus.sendOK.rawValue
        case .flushDiskTimeout: SendStatus.flushDiskTimeout.rawValue
        case .flushSlaveTimeout: SendStatus.flushSlaveTimeout.rawValue
        case .slaveNotAvailable: SendStatus.slaveNotAvailable.rawValue
        case .responseFailed: "RESPONSE_FAILED"
        case .sendFailed: "SEND_FAILED"
        }
    }

    /// The label in the per-second line and the summary (`Send Failed`, `Response Failed` are RocketMQ's).
    var label: String {
        switch self {
        case .sendOK: "Send OK"
        case .flushDiskTimeout: "Flush Disk Timeout"
        case .flushSlaveTimeout: "Flush Slave Timeout"
        case .slaveNotAvailable: "Slave Not Available"
        case .responseFailed: "Response Failed"
        case .sendFailed: "Send Failed"
        }
    }

    /// The broker stored the message but did not confirm what was asked (disk flush, slave copy).
    static let nonOKAnswers: [SendOutcome] = [.flushDiskTimeout, .flushSlaveTimeout, .slaveNotAvailable]
    /// The per-second line's order after RocketMQ's prefix: the two failures, then the non-OK answers.
    static let lineOrder: [SendOutcome] = [.sendFailed, .responseFailed] + nonOKAnswers
}

/// Sends counted by outcome: one slot per `SendOutcome` (a send of a `--batch` counts once).
struct StatusCounts: Sendable, Equatable {
    private var counts = [Int](repeating: 0, count: SendOutcome.allCases.count)

    subscript(outcome: SendOutcome) -> Int {
        get { counts[outcome.rawValue] }
        set { counts[outcome.rawValue] = newValue }
    }

    var total: Int { counts.reduce(0, +) }
    /// Every send that was not SEND_OK (JSON `failed`).
    var notOK: Int { total - self[.sendOK] }
    /// FLUSH_DISK_TIMEOUT + FLUSH_SLAVE_TIMEOUT + SLAVE_NOT_AVAILABLE.
    var nonOKAnswers: Int { SendOutcome.nonOKAnswers.reduce(0) { $0 + self[$1] } }

    mutating func add(_ other: StatusCounts) {
        for outcome in SendOutcome.allCases { self[outcome] += other[outcome] }
    }

    /// `{"SEND_OK":n,"FLUSH_DISK_TIMEOUT":n,...,"SEND_FAILED":n}`: every status, zeros included.
    var json: String {
        "{" + SendOutcome.allCases.map { "\"\($0.name)\":\(self[$0])" }.joined(separator: ",") + "}"
    }

    /// `Send Failed: 0 Response Failed: 0 Flush Disk Timeout: 0 ...` in `SendOutcome.lineOrder`.
    func labelled(separator: String = " ") -> String {
        SendOutcome.lineOrder.map { "\($0.label): \(self[$0])" }.joined(separator: separator)
    }
}
