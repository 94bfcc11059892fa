import ArgumentParser

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the store (and, as the broker arrives, a broker) like RocketMQ's benchmark tools.",
        subcommands: [StoreBench.self, CrashChild.self])
}
