import ArgumentParser
import LoraStoreClient
import LoraStoreCore

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record merged builds (recipes) without computing them.",
        subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a build recipe and tag it. Nothing is merged until the first pull.")

        @Argument(help: "The build's name: NAME[:TAG].")
        var name: String

        @Option(help: "The base model reference.")
        var base: String

        @Option(name: .customLong("adapter"), help: "An adapter as REF[@WEIGHT] (repeatable, applied in order).")
        var adapters: [String] = []

        @OptionGroup var merge: MergeOptionGroup

        @OptionGroup var global: GlobalOptions

        @OptionGroup var remote: RemoteOptions

        func run() async throws {
            let tag = try parseReference(name)
            let baseReference = try parseReference(base)
            let adapterArguments = try adapters.map(AdapterArgument.init(parsing:)).map { ($0.reference, $0.weight) }
            let options = try merge.options()
            let digest = if let client = try remote.client() {
                try await client.createBuild(tag: tag, base: baseReference, adapters: adapterArguments, options: options)
            } else {
                try global.openStore().createBuild(base: baseReference, adapters: adapterArguments, options: options, tag: tag)
            }
            if global.json {
                try Output.json(["reference": tag.description, "digest": digest.description])
            } else {
                print("created build \(tag) \(digest)")
                print("  nothing merged yet: `lorastore pull \(tag) -o DIR` materializes it")
            }
        }
    }
}
