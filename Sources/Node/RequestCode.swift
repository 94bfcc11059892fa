/// Request codes (RocketMQ's `RequestCode`) the roles here handle or send.
public enum RequestCode {
    public static let sendMessage: Int32 = 10
    public static let pullMessage: Int32 = 11
    public static let heartBeat: Int32 = 34
    public static let putKVConfig: Int32 = 100
    public static let getKVConfig: Int32 = 101
    public static let deleteKVConfig: Int32 = 102
    public static let registerBroker: Int32 = 103
    public static let unregisterBroker: Int32 = 104
    public static let getRouteInfoByTopic: Int32 = 105
    public static let getBrokerClusterInfo: Int32 = 106
    public static let getAllTopicListFromNameServer: Int32 = 206
    public static let deleteTopicInNamesrv: Int32 = 216
    public static let getKVListByNamespace: Int32 = 219
    public static let getTopicsByCluster: Int32 = 224
    public static let queryDataVersion: Int32 = 322
}

/// Response codes (RocketMQ's `ResponseCode`) beyond the remoting layer's own.
public enum ResponseCode {
    public static let success: Int32 = 0
    public static let systemError: Int32 = 1
    public static let topicNotExist: Int32 = 17
    public static let queryNotFound: Int32 = 22
}
