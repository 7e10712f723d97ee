import ArgumentParser
import LoraStoreClient
import LoraStoreCore

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the store holds and what it saves against plain files and merged copies.")

    @Argument(help: "Show only this base, adapter or build (totals are still the whole store's, or with --remote and a token limited to some namespaces, theirs).")
    var reference: String?

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let parsed = try reference.map(parseReference)
        let stats = if let client = try remote.client() {
            try await client.stats(for: parsed)
        } else {
            try global.openStore().stats(for: parsed)
        }
        if global.json {
            try Output.json(stats)
            return
        }
        StatsTable.print(stats)
        print("Index: \(Output.bytes(stats.indexBytes)). Unreferenced blobs awaiting `lorastore gc`: \(Output.bytes(stats.unreferencedBytes)).")
        if let count = stats.untaggedManifests, count > 0 {
            print(
                "Untagged, counted above: \(count) manifest(s) no tag or pin keeps (\(Output.bytes(stats.untaggedExclusiveBytes ?? 0)) on "
                    + "disk of their own); `lorastore gc` removes them after its grace period.")
        }
    }
}
