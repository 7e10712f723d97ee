import ArgumentParser
import LoraStoreCore

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the store holds and what it saves against plain files and merged copies.")

    @Argument(help: "Show only this base, adapter or build (totals are still the whole store's).")
    var reference: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let stats = try global.openStore().stats(for: try reference.map(parseReference))
        if global.json {
            try Output.json(stats)
            return
        }
        let saved = stats.logicalBytes - stats.storedBytes
        print("Without lorastore (bases and adapters as files, one full merged model per build): \(Output.bytes(stats.fullCopiesBytes))")
        print("With lorastore (distinct blobs on disk):                                           \(Output.bytes(stats.storedBytes))")
        print("Saved: \(Output.bytes(saved)), \(String(format: "%.2f", stats.savingsRatio))x smaller")
        print("")
        Output.table([
            ["SAVED BY", "BYTES", "WHAT IT COUNTS"],
            ["deduplication", Output.bytes(stats.dedupSavedBytes), "base and adapter bytes stored once for several manifests"],
            ["compression", Output.bytes(stats.compressionSavedBytes), "logical minus on-disk bytes of distinct base and adapter blobs"],
            ["lazy builds", Output.bytes(stats.buildSavedBytes), "full merged size of every build minus its materialized tensors on disk"],
        ])
        print("")
        var rows = [["NAME", "KIND", "DIGEST", "AS FILES", "ON DISK", "ONLY ITS OWN"]]
        for entry in stats.entries {
            rows.append([
                entry.tags.first ?? "(untagged)", entry.kind.rawValue, entry.digest.short, Output.bytes(entry.logicalBytes),
                Output.bytes(entry.storedBytes), Output.bytes(entry.exclusiveBytes),
            ])
        }
        Output.table(rows)
        print("")
        print("ON DISK counts every blob a manifest references (a build: its materialized tensors); ONLY ITS OWN is what removing it frees.")
        print("Index: \(Output.bytes(stats.indexBytes)). Unreferenced blobs awaiting `lorastore gc`: \(Output.bytes(stats.unreferencedBytes)).")
    }
}
