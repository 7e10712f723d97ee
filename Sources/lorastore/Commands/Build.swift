import ArgumentParser
import LoraStoreCore

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record merged builds (recipes) without computing them.",
        subcommands: [Create.self])

    struct Create: ParsableCommand {
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

        func run() throws {
            let tag = try parseReference(name)
            let adapterArguments = try adapters.map(AdapterArgument.init(parsing:))
            let digest = try global.openStore().createBuild(
                base: try parseReference(base), adapters: adapterArguments.map { ($0.reference, $0.weight) },
                options: try merge.options(), tag: tag)
            if global.json {
                try Output.json(["reference": tag.description, "digest": digest.description])
            } else {
                print("created build \(tag) \(digest)")
                print("  nothing merged yet: `lorastore pull \(tag) -o DIR` materializes it")
            }
        }
    }
}
