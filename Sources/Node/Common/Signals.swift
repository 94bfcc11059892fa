import Remoting
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

private final class SignalSources: @unchecked Sendable {
    let lock = Mutex(())
    var sources: [DispatchSourceSignal] = []
    var timers: [DispatchSourceTimer] = []
}
private let signalSources = SignalSources()

/// Returns when SIGTERM or SIGINT arrives (the roles then shut down gracefully and exit 0).
public func waitForTerminationSignal() async {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let fired = Atomic<Bool>(false)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let queue = DispatchQueue(label: "signals")
        let sources = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                if !fired.exchange(true, ordering: .relaxed) { continuation.resume() }
            }
            source.resume()
            return source
        }
        signalSources.lock.withLock { _ in signalSources.sources += sources }  // keep them alive
        // With MQ_EXIT_WITH_PARENT=<pid of the launcher> (tests and bench set it), a launcher that dies without
        // stopping us (a crashed test run) counts as SIGTERM: no orphaned broker keeps ports, files and pipes.
        if let value = getenv("MQ_EXIT_WITH_PARENT") {
            let named = pid_t(String(cString: value)) ?? 0
            let parent = named > 1 ? named : getppid()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
            timer.setEventHandler {
                if getppid() != parent, !fired.exchange(true, ordering: .relaxed) { continuation.resume() }
            }
            timer.resume()
            signalSources.lock.withLock { _ in signalSources.timers.append(timer) }
        }
    }
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
