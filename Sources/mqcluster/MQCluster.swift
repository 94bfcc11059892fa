// mqcluster: start, watch and stop a conf set (conf/2m-2s-sync, ...) on one machine. The work is in Node/Cluster.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Cluster
import Common

struct SetOptions: ParsableArguments {
    @Argument(help: "conf set directory (conf/2m-noslave, conf/2m-2s-sync, conf/2m-2s-async, conf/dledger)")
    var confDir: String
    @Option(help: "where sets run: ROOT/<set>/{pids,logs,store} (default $MQ_CLUSTER_ROOT, else $HOME/mqcluster)")
    var root: String?
    @Option(help: "directory holding mqnamesrv and mqbroker (default: mqcluster's own)")
    var binDir: String?

    /// The set, its run directory and the binaries; a bad set becomes `mqcluster: <reason>` and exit status 2.
    func control() throws -> ClusterControl {
        let confSet: ConfSet
        do { confSet = try ConfSet.load(confDir) } catch {
            standardError("mqcluster: \(error)\n")
            throw ExitCode(2)
        }
        let base = root ?? environment("MQ_CLUSTER_ROOT") ?? ((environment("HOME") ?? "/tmp") + "/mqcluster")
        let run = RunDirectory(path: absolutePath(base) + "/" + confSet.name)
        return ClusterControl(confSet: confSet, run: run, binDirectory: binDir.map(absolutePath) ?? ownDirectory(),
                              say: { standardOutput($0 + "\n") })
    }
}

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// One write per line (unbuffered): in order with stderr, also into a pipe or a file.
func standardOutput(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

func standardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func ownDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return "." }
    let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
}

@main
struct MQCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqcluster", abstract: "Start, watch and stop every NameServer and broker of a conf set on this machine.",
        subcommands: [Up.self, Down.self, Status.self, Logs.self])
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the set, start every role detached (pid files, logs), wait until all answer, print the cluster list.")
    @OptionGroup var options: SetOptions
    @Option(help: "seconds to wait for every role to answer and register") var timeout = 60

    func run() async throws {
        let control = try options.control()
        do { try await control.up(timeoutSeconds: timeout) } catch {
            standardError("mqcluster: \(error)\n")
            throw ExitCode(1)
        }
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "SIGTERM every role (brokers first: they flush and unregister), SIGKILL those still running after --timeout.")
    @OptionGroup var options: SetOptions
    @Option(help: "seconds each group (brokers, then NameServers) gets to stop") var timeout = 30

    func run() async throws {
        let outcomes = try await options.control().down(timeoutSeconds: timeout)
        let killed = outcomes.filter { $0.value == .killed }.map(\.key).sorted()
        if !killed.isEmpty { standardOutput("mqcluster: killed (SIGKILL) after \(timeout) s: \(killed.joined(separator: ", "))" + "\n") }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A table of every role: role, address, pid, up time, TPS, disk use, HA lag. Exit status 1 unless all run.")
    @OptionGroup var options: SetOptions
    @Option(help: "milliseconds between the two runtime samples TPS is measured over") var interval = 1_000

    func run() async throws {
        let rows = try await options.control().status(intervalMillis: interval)
        for line in ClusterControl.render(rows) { standardOutput(line + "\n") }
        if rows.contains(where: { $0.state != "running" }) { throw ExitCode(1) }
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show (or with -f follow) the roles' logs.")
    @OptionGroup var options: SetOptions
    @Argument(help: "roles to show (file names without extension: namesrv-1, broker-a-s); default all") var roles: [String] = []
    @Option(name: .customShort("n"), help: "lines of each log") var lines = 50
    @Flag(name: .short, help: "follow the logs (tail -F) until interrupted") var follow = false

    func run() async throws {
        let control = try options.control()
        let files: [String]
        do { files = try control.logFiles(roles: roles) } catch {
            standardError("mqcluster: \(error)\n")
            throw ExitCode(2)
        }
        if follow {
            let arguments = ["tail", "-n", "\(lines)", "-F"] + files
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            // exec keeps this thread's signal mask, and the runtime's threads block signals: tail must get Ctrl-C.
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            for number in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { signal(number, SIG_DFL) }
            execvp("tail", &argv)
            standardError("mqcluster: cannot run tail: \(String(cString: strerror(errno)))\n")
            throw ExitCode(1)
        }
        for file in files {
            standardOutput("==> \(file) <==" + "\n")
            if access(file, R_OK) != 0 { standardOutput("(no log yet)" + "\n") }
            for line in ClusterProcess.tail(file, lines: lines) { standardOutput(line + "\n") }
        }
    }
}
