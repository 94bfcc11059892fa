import CommitLog
import Common
import IndexFile
import Synchronization

/// Consumer groups' settings (RocketMQ's `SubscriptionGroupManager`), kept in `config/subscriptionGroup.json`;
/// a group is created with defaults when it first consumes.
///
/// **Thread:** any.
final class SubscriptionGroupManager: Sendable {
    private struct State {
        var wrapper = SubscriptionGroupWrapper()
        var file: ConfigBodyFile<SubscriptionGroupWrapper>
    }
    private let state: Mutex<State>
    private let log: @Sendable (String) -> Void

    init(storePathRootDir: String, log: @escaping @Sendable (String) -> Void) throws(StoreError) {
        var file = ConfigBodyFile<SubscriptionGroupWrapper>(storePathRootDir: storePathRootDir, name: "subscriptionGroup.json", log: log)
        let wrapper = try file.load() ?? SubscriptionGroupWrapper()
        state = Mutex(State(wrapper: wrapper, file: file))
        self.log = log
    }

    func group(_ name: String) -> SubscriptionGroupConfig? { state.withLock { $0.wrapper.subscriptionGroupTable[name] } }

    /// The group's settings, created with defaults (and persisted) when new.
    @discardableResult
    func findOrCreate(_ name: String) -> SubscriptionGroupConfig {
        state.withLock { state in
            if let existing = state.wrapper.subscriptionGroupTable[name] { return existing }
            let created = SubscriptionGroupConfig(groupName: name)
            state.wrapper.subscriptionGroupTable[name] = created
            persist(&state)
            return created
        }
    }

    /// Creates or replaces a group's settings (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), persisted.
    func upsert(_ config: SubscriptionGroupConfig) {
        state.withLock { state in
            state.wrapper.subscriptionGroupTable[config.groupName] = config
            persist(&state)
        }
    }

    /// Removes a group's settings (DELETE_SUBSCRIPTIONGROUP); false when there were none.
    @discardableResult
    func delete(_ name: String) -> Bool {
        state.withLock { state in
            guard state.wrapper.subscriptionGroupTable.removeValue(forKey: name) != nil else { return false }
            persist(&state)
            return true
        }
    }

    /// Every group (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, a slave's sync).
    var wrapper: SubscriptionGroupWrapper { state.withLock { $0.wrapper } }

    func replaceAll(with wrapper: SubscriptionGroupWrapper) {
        state.withLock { state in
            guard state.wrapper.subscriptionGroupTable != wrapper.subscriptionGroupTable else { return }
            state.wrapper = wrapper
            persist(&state, bump: false)
        }
    }

    private func persist(_ state: inout State, bump: Bool = true) {
        if bump { state.wrapper.dataVersion.next() }
        do { try state.file.persist(state.wrapper) } catch { log("broker: cannot persist subscriptionGroup.json: \(error)") }
    }
}
