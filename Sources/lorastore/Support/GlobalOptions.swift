import ArgumentParser
import Foundation
import LoraStoreCore

/// Options every command that opens a store takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store root.", valueName: "path"))
    var store: String?

    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false

    /// The store root: --store, else $LORASTORE_HOME, else ./store.
    var storeRoot: URL {
        let path = store ?? ProcessInfo.processInfo.environment["LORASTORE_HOME"] ?? "store"
        return URL(fileURLWithPath: path)
    }

    func openStore() throws -> Store {
        try Store(root: storeRoot)
    }
}
