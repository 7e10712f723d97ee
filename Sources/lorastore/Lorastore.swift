import ArgumentParser
import LoraStoreCore

/// The `lorastore` command: push adapters, pull merged builds, query storage savings.
@main
struct Lorastore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorastore",
        abstract: "A LoRA adapter store: push base models and adapters, pull merged builds, see what it saves.",
        discussion: """
            The store lives in --store PATH, else $LORASTORE_HOME, else ./store (the repository's store/ folder \
            when run from its root). References are NAME[:TAG] (tag defaults to latest), NAME@sha256:<hex> or \
            sha256:<hex>.
            """,
        version: LoraStoreVersion.current,
        subcommands: [
            Demo.self, Push.self, Pull.self, List.self, Show.self, Tag.self, Remove.self, Build.self, LineageCommand.self,
            Cache.self, Stats.self, GarbageCollect.self, Verify.self, Merge.self, Quantize.self, Serve.self, Token.self,
        ]
    )
}
