import ArgumentParser

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a broker (producer, consumer, matrix) and the store, like RocketMQ's benchmark tools.",
        subcommands: [ProducerBench.self, ConsumerBench.self, MatrixBench.self, NatsBench.self, RedisBench.self, StoreBench.self, FloorBench.self, CrashChild.self, FailoverBench.self, ChaosBench.self])
}
