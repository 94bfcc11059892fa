import Logging
import Common
import Remoting
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension PushConsumer {
    // MARK: Offsets

    func updateOffset(_ queue: MessageQueue, _ offset: Int64, force: Bool = false) {
        state.withLock { state in
            guard state.queues[queue] != nil else { return }
            if force || offset > (state.offsets[queue] ?? -1) { state.offsets[queue] = offset }
        }
    }

    func commitOffset(_ queue: MessageQueue) async {
        guard settings.messageModel == .clustering, let offset = state.withLock({ $0.offsets[queue] }) else { return }
        try? await client.updateOffset(queue, group: settings.group, offset: offset)
    }

    /// Clustering: UPDATE_CONSUMER_OFFSET per held queue; broadcasting: the local file.
    func persistOffsets() async {
        if settings.messageModel == .broadcasting {
            saveLocalOffsets()
            return
        }
        let offsets = state.withLock { state in state.offsets.filter { state.queues[$0.key] != nil } }
        for (queue, offset) in offsets { try? await client.updateOffset(queue, group: settings.group, offset: offset) }
    }

    var localOffsetPath: String { "\(settings.offsetStoreDir)/\(client.config.instanceName)/\(settings.group)/offsets.json" }

    func saveLocalOffsets() {
        let offsets = state.withLock { $0.offsets }
        TextFile.writeAtomically(localOffsetPath, LocalOffsetTable(offsetTable: offsets).json.rendered())
    }

    func loadLocalOffsets() {
        guard let text = TextFile.read(localOffsetPath) else { return }
        do {
            let loaded = try LocalOffsetTable.decode(from: text).offsetTable
            state.withLock { $0.offsets = loaded }
        } catch {
            Logger(label: "RocketmqClient").warning(
                "consumer \(settings.group): \(localOffsetPath) is unreadable (\(error)); starting from the broker's offsets")
        }
    }
}
