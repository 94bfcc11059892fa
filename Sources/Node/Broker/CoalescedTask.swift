import Synchronization

/// Runs an asynchronous job at most once at a time: a request while it runs makes it run once more when done, so a
/// burst of requests costs at most two runs and the last run always starts after the last request (registrations
/// after topic creations, reactions to DLedger role changes).
///
/// **Thread:** `request` from any thread; the job runs in a `Task`, never two at once.
final class CoalescedTask: Sendable {
    private let state = Mutex<(running: Bool, again: Bool)>((false, false))

    /// Runs `job` now, or once more after the run in progress.
    func request(_ job: @escaping @Sendable () async -> Void) {
        let start = state.withLock { state -> Bool in
            if state.running {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                await job()
                let more = state.withLock { state -> Bool in
                    defer { state.again = false }
                    if !state.again { state.running = false }
                    return state.again
                }
                if !more { return }
            }
        }
    }
}
