import ArgumentParser
import LoraStoreCore

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a tag. The bytes stay until garbage collection finds them unreferenced.")

    @Argument(help: "NAME[:TAG], or NAME@sha256:<hex> to remove every tag of NAME on that digest.")
    var reference: String

    @Flag(help: "Remove the last name of a base or adapter even when builds use it.")
    var force = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let removed = try global.openStore().untag(try parseReference(reference), force: force)
        if global.json {
            try Output.json(["removed": removed])
        } else {
            for tag in removed { print("untagged \(tag)") }
        }
    }
}
