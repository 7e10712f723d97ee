import LoraStoreCore

/// The savings table `stats` and `demo` print: totals, what saved the bytes, and one line per manifest.
enum StatsTable {
    static func print(_ stats: StorageStats) {
        let saved = stats.logicalBytes - stats.storedBytes
        Swift.print("Without lorastore (bases and adapters as files, one full merged model per build): \(Output.bytes(stats.fullCopiesBytes))")
        Swift.print("With lorastore (distinct blobs on disk):                                           \(Output.bytes(stats.storedBytes))")
        Swift.print("Saved: \(Output.bytes(saved)), \(String(format: "%.2f", stats.savingsRatio))x smaller")
        Swift.print("")
        Output.table([
            ["SAVED BY", "BYTES", "WHAT IT COUNTS"],
            ["deduplication", Output.bytes(stats.dedupSavedBytes), "base and adapter bytes stored once for several manifests"],
            ["compression", Output.bytes(stats.compressionSavedBytes), "logical minus on-disk bytes of distinct base and adapter blobs"],
            ["lazy builds", Output.bytes(stats.buildSavedBytes), "full merged size of every build minus its materialized tensors on disk"],
        ])
        Swift.print("")
        var rows = [["NAME", "KIND", "DIGEST", "AS FILES", "ON DISK", "ONLY ITS OWN"]]
        for entry in stats.entries {
            rows.append([
                entry.tags.first ?? "(untagged)", entry.kind.rawValue, entry.digest.short, Output.bytes(entry.logicalBytes),
                Output.bytes(entry.storedBytes), Output.bytes(entry.exclusiveBytes),
            ])
        }
        Output.table(rows)
        Swift.print("")
        Swift.print("ON DISK counts every blob a manifest references (a build: its materialized tensors); ONLY ITS OWN is what removing it frees.")
    }
}
