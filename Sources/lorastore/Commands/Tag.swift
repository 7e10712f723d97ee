import ArgumentParser
import LoraStoreCore

struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Point a tag at what another reference points at.")

    @Argument(help: "The existing reference.")
    var source: String

    @Argument(help: "The new tag: NAME[:TAG].")
    var destination: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let destination = try parseReference(destination)
        let digest = try global.openStore().tag(try parseReference(source), as: destination)
        if global.json {
            try Output.json(["reference": destination.description, "digest": digest.description])
        } else {
            print("tagged \(destination) \(digest)")
        }
    }
}
