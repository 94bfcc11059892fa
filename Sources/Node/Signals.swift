#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

private final class SignalSources: @unchecked Sendable {
    let lock = Mutex(())
    var sources: [DispatchSourceSignal] = []
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
