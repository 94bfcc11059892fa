import Remoting
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// SIGTERM and SIGINT, caught from the moment a role starts (`TerminationSignal.install()` first thing in
/// `main`): a signal that arrives while the role is still starting, or right after it printed "boot success",
/// is remembered and answered with a graceful stop, never with the default action (death without a flush).
public final class TerminationSignal: @unchecked Sendable {
    private let lock = Mutex<State>(State())
    private struct State {
        var fired = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private var sources: [DispatchSourceSignal] = []
    private var timer: DispatchSourceTimer?
    private static let shared = Mutex<TerminationSignal?>(nil)

    /// Starts catching SIGTERM and SIGINT (once per process; later calls return the same instance).
    @discardableResult
    public static func install() -> TerminationSignal {
        shared.withLock { shared in
            if let existing = shared { return existing }
            let created = TerminationSignal()
            shared = created
            return created
        }
    }

    private init() {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "signals")
        sources = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in fire() }
            source.resume()
            return source
        }
        // With MQ_EXIT_WITH_PARENT=<pid of the launcher> (tests and bench set it), a launcher that dies without
        // stopping us (a crashed test run) counts as SIGTERM: no orphaned broker keeps ports, files and pipes.
        if let value = getenv("MQ_EXIT_WITH_PARENT") {
            let named = pid_t(String(cString: value)) ?? 0
            let parent = named > 1 ? named : getppid()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
            timer.setEventHandler { [unowned self] in if getppid() != parent { fire() } }
            timer.resume()
            self.timer = timer
        } else if let value = getenv("MQ_EXIT_WITH_PROCESS"), let watched = pid_t(String(cString: value)), watched > 1 {
            // MQ_EXIT_WITH_PROCESS=<pid>: the same for a detached role (`mqcluster up` starts them in sessions of their
            // own, so their parent is gone at once): it stops once that process no longer exists.
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
            timer.setEventHandler { [unowned self] in if kill(watched, 0) != 0 && errno == ESRCH { fire() } }
            timer.resume()
            self.timer = timer
        }
    }

    private func fire() {
        let waiter = lock.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.fired else { return nil }
            state.fired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Acts as if a termination signal arrived (a role stopping for another reason releases its waiters).
    public func trigger() { fire() }

    /// Returns once a termination signal arrived (at once when one already did).
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { state -> Bool in
                if state.fired { return true }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Returns when SIGTERM or SIGINT arrives (the roles then shut down gracefully and exit 0).
public func waitForTerminationSignal() async {
    await TerminationSignal.install().wait()
}

/// Writes one whole line to stdout with a single write(2): unbuffered, so a supervising process (or a
/// test) sees it at once, and lines from several threads never interleave.
public func logLine(_ text: String) {
    var line = text
    line.append("\n")
    line.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(1, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}
