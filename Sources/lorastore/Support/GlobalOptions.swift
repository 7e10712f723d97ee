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

    /// Opens the store. Only commands that put something in (`creating`) make a new one: any other command
    /// on a mistyped path says so instead of leaving an empty store there. `maintenanceWait` bounds how long
    /// an operation waits for garbage collection or a repair (``Store/maintenanceWait``).
    func openStore(creating: Bool = false, maintenanceWait: Duration? = nil) throws -> Store {
        let root = storeRoot
        guard creating || FileManager.default.fileExists(atPath: root.appending(path: Store.indexFileName).path) else {
            throw CommandError(
                "no store at \(root.path) (give --store PATH or set LORASTORE_HOME; `lorastore push`, `demo`, `serve` or `token create` creates one)")
        }
        return try Store(root: root, maintenanceWait: maintenanceWait)
    }
}
