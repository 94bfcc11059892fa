#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

extension MQAdmin {
    /// The entry point. The subcommand (argv[1]) is matched case-insensitively against the known names, as
    /// RocketMQ's `mqadmin` does, before ArgumentParser sees the arguments; a name no command has is refused in
    /// one line (else ArgumentParser would complain about the first option instead, `Unknown option '-n'`).
    /// Bad arguments are one line too (`mqadmin: ...`, exit status 1); `--help` prints the usage as usual.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-") {
            guard let name = resolveSubcommand(first) else {
                FileHandleLite.standardError("mqadmin: no subcommand '\(first)'; `mqadmin --help` lists them\n")
                Glibc.exit(1)
            }
            arguments[0] = name
            // `help <command>` names a command too.
            if name == "help", arguments.count > 1, let named = resolveSubcommand(arguments[1]) { arguments[1] = named }
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) }  // --help, help <command>
            let command = arguments.first.map { " " + $0 } ?? ""
            FileHandleLite.standardError("mqadmin: \(message(for: error)); `mqadmin\(command) --help` shows the options\n")
            Glibc.exit(1)
        }
    }

    /// The known subcommand or alias spelled like `name` ignoring case (`help` included), or nil.
    static func resolveSubcommand(_ name: String) -> String? {
        let known = configuration.subcommands.flatMap { [$0.configuration.commandName].compactMap { $0 } + $0.configuration.aliases }
            + ["help"]
        if known.contains(name) { return name }
        let lowered = name.lowercased()
        return known.first { $0.lowercased() == lowered }
    }
}
