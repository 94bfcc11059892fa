#if canImport(Glibc)
import Glibc
#endif
import Common

extension ClusterControl {
    /// What `down` did to one role.
    public enum StopOutcome: Sendable, Equatable {
        case stopped
        /// Still running `timeoutSeconds` after SIGTERM, so SIGKILLed.
        case killed
        case notRunning
        /// A pid file whose process is gone (or is another program now).
        case stalePIDFile(pid_t)
    }

    /// Stops every role of the set that runs: SIGTERM to the brokers (each flushes and unregisters from the
    /// NameServers, which are still up), then to the NameServers; each group gets `timeoutSeconds` before its
    /// stragglers are SIGKILLed and named. Pid files are removed; a stale one is said.
    /// - Returns: what happened to each role, by name.
    @discardableResult
    public func down(timeoutSeconds: Int) async -> [String: StopOutcome] {
        var outcomes: [String: StopOutcome] = [:]
        var running: [(ClusterRole, pid_t)] = []
        for role in confSet.roles {
            guard let pid = run.readPID(role) else {
                outcomes[role.name] = .notRunning
                say("mqcluster: \(role.name): not running (no pid file)")
                continue
            }
            if ClusterProcess.isRunning(pid, executable: role.executable) {
                running.append((role, pid))
            } else {
                outcomes[role.name] = .stalePIDFile(pid)
                say("mqcluster: \(role.name): stale pid file \(run.pidFile(role)) (pid \(pid) is gone); removed")
                run.removePID(role)
            }
        }
        outcomes.merge(await stop(running, timeoutSeconds: timeoutSeconds)) { _, new in new }
        return outcomes
    }

    /// SIGTERM to `roles`' brokers, bounded wait, SIGKILL for stragglers; then the same for the NameServers.
    @discardableResult
    func stop(_ roles: [(ClusterRole, pid_t)], timeoutSeconds: Int) async -> [String: StopOutcome] {
        var outcomes: [String: StopOutcome] = [:]
        for kind in [ClusterRole.Kind.broker, .nameServer] {
            let batch = roles.filter { $0.0.kind == kind }
            guard !batch.isEmpty else { continue }
            for (_, pid) in batch { kill(pid, SIGTERM) }
            let deadline = uptimeNanos() + UInt64(timeoutSeconds) * 1_000_000_000
            let stragglers = await ClusterProcess.waitGone(batch.map { ($0.1, $0.0.executable) }, deadline: deadline)
            for (role, pid) in batch {
                if stragglers.contains(pid) {
                    kill(pid, SIGKILL)
                    outcomes[role.name] = .killed
                    say("mqcluster: \(role.name) (pid \(pid)) did not stop within \(timeoutSeconds) s of SIGTERM: killed (SIGKILL)")
                } else {
                    outcomes[role.name] = .stopped
                    say("mqcluster: \(role.name) (pid \(pid)) stopped")
                }
            }
            // A SIGKILLed process is gone once the kernel reaped its memory; wait for that too (bounded).
            _ = await ClusterProcess.waitGone(batch.filter { stragglers.contains($0.1) }.map { ($0.1, $0.0.executable) },
                                              deadline: uptimeNanos() + 5_000_000_000)
            for (role, _) in batch { run.removePID(role) }
        }
        return outcomes
    }

    /// The paths of the role logs `logs` shows: all of them, or those of the roles named.
    /// - Throws: `ClusterError` naming a role the set does not have.
    public func logFiles(roles names: [String]) throws(ClusterError) -> [String] {
        let known = confSet.roles.map(\.name)
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw ClusterError("\(confSet.directory) has no role \(unknown) (roles: \(known.joined(separator: ", ")))")
        }
        return confSet.roles.filter { names.isEmpty || names.contains($0.name) }.map { run.logFile($0) }
    }
}
