#if canImport(Glibc)
import Glibc
#endif
import Remoting

extension SendMessageProcessor {
    /// The request's topic and its send entry (nil: no such topic yet). A connection mostly sends to the same few
    /// topics: while the topics have not changed, one it sent to lately is found by comparing the request's topic
    /// bytes, without making the name or hashing it and without the manager's lock.
    func lookUpTopic(_ fields: SendFields, context: RequestContext) -> (name: String, found: SendTopic?) {
        guard let value = fields.topic else { return ("", nil) }
        let generation = services.topics.sendGeneration
        let cache = context.connectionState as? SendTopicCache
        if let cache, let hit = value.withBytes({ cache.entry(named: $0, generation: generation) }) { return (hit.name, hit.topic) }
        let name = value.string
        let found = services.topics.topicForSend(name)
        if let found {
            if let cache {
                cache.keep(name, found, generation: generation)
            } else {
                let made = SendTopicCache()
                made.keep(name, found, generation: generation)
                context.connectionState = made
            }
        }
        return (name, found)
    }
}

/// A connection's last few send topics with the topic generation each was found at (on its event loop only). A
/// miss replaces the oldest entry in place: no allocation beyond the first.
final class SendTopicCache {
    struct Entry {
        var name: String
        var generation: UInt64
        var topic: SendTopic
    }
    private var entries: [Entry] = []
    private var oldest = 0
    static let capacity = 4

    init() { entries.reserveCapacity(Self.capacity) }

    /// The entry whose name has `bytes`, if it was found at `generation`.
    func entry(named bytes: UnsafeRawBufferPointer, generation: UInt64) -> Entry? {
        for index in entries.indices where entries[index].generation == generation {
            let matches = entries[index].name.utf8.withContiguousStorageIfAvailable { name in
                name.count == bytes.count && (bytes.isEmpty || memcmp(name.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
            }
            if matches == true { return entries[index] }
        }
        return nil
    }

    func keep(_ name: String, _ topic: SendTopic, generation: UInt64) {
        let entry = Entry(name: name, generation: generation, topic: topic)
        if entries.count < Self.capacity {
            entries.append(entry)
        } else {
            entries[oldest] = entry
            oldest = (oldest + 1) % Self.capacity
        }
    }
}
