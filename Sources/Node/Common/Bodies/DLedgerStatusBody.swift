import NIOCore
import Remoting

/// GET_DLEDGER_STATUS's body (ours): one member's view of its DLedger group. On the leader each other member
/// carries its match index and lag (entries behind the leader's last); elsewhere they are absent.
public struct DLedgerStatusBody: Equatable, Sendable, RemotingBody {
    public struct Member: Equatable, Sendable {
        public var name: String
        public var address: String
        public var matchIndex: Int64?
        public var lag: Int64?

        public init(name: String, address: String, matchIndex: Int64?, lag: Int64?) {
            self.name = name
            self.address = address
            self.matchIndex = matchIndex
            self.lag = lag
        }
    }

    public var group: String
    public var selfId: String
    /// The broker's remoting address (the one clients dial).
    public var brokerAddr: String
    /// leader, follower, candidate or pre-candidate.
    public var role: String
    public var term: Int64
    public var leaderId: String?
    public var committedIndex: Int64
    /// The last index written to this member's Raft log.
    public var writtenIndex: Int64
    public var appliedIndex: Int64
    /// The member takes writes (it serves as master, brokerId 0).
    public var writable: Bool
    public var members: [Member]

    public init(group: String, selfId: String, brokerAddr: String, role: String, term: Int64, leaderId: String?, committedIndex: Int64,
                writtenIndex: Int64, appliedIndex: Int64, writable: Bool, members: [Member]) {
        self.group = group
        self.selfId = selfId
        self.brokerAddr = brokerAddr
        self.role = role
        self.term = term
        self.leaderId = leaderId
        self.committedIndex = committedIndex
        self.writtenIndex = writtenIndex
        self.appliedIndex = appliedIndex
        self.writable = writable
        self.members = members
    }

    public init(json: JSONValue) throws(BodyError) {
        let body = BodyReader(json, "DLedgerStatus")
        try body.requireObject()
        group = try body.string("group")
        selfId = try body.string("selfId")
        brokerAddr = body.optionalString("brokerAddr") ?? ""
        role = try body.string("role")
        term = body.int64("term", default: 0)
        leaderId = body.optionalString("leaderId")
        committedIndex = body.int64("committedIndex", default: 0)
        writtenIndex = body.int64("writtenIndex", default: 0)
        appliedIndex = body.int64("appliedIndex", default: 0)
        writable = body.bool("writable", default: false)
        members = []
        for item in try body.array("members") {
            let member = BodyReader(item, "DLedgerMember")
            members.append(Member(name: try member.string("name"), address: member.optionalString("address") ?? "",
                                  matchIndex: item["matchIndex"]?.int, lag: item["lag"]?.int))
        }
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("appliedIndex", .integer(appliedIndex)), ("brokerAddr", .string(brokerAddr)), ("committedIndex", .integer(committedIndex)),
            ("group", .string(group)),
        ]
        if let leaderId { members.append(("leaderId", .string(leaderId))) }
        members.append(("members", .array(self.members.map { member in
            var fields: [(String, JSONValue)] = [("address", .string(member.address))]
            if let lag = member.lag { fields.append(("lag", .integer(lag))) }
            if let match = member.matchIndex { fields.append(("matchIndex", .integer(match))) }
            fields.append(("name", .string(member.name)))
            return .object(fields)
        })))
        members += [("role", .string(role)), ("selfId", .string(selfId)), ("term", .integer(term)), ("writable", .bool(writable)),
                    ("writtenIndex", .integer(writtenIndex))]
        return .object(members)
    }
}
