import ArgumentParser
import LoraStoreClient
import LoraStoreCore

struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Show what a build is made of, or which builds use a base or adapter.")

    @Argument(help: "A build, base or adapter reference.")
    var reference: String

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let parsed = try parseReference(reference)
        let lineage = if let client = try remote.client() {
            try await client.lineage(parsed)
        } else {
            try global.openStore().lineage(parsed)
        }
        if global.json {
            try Output.json(lineage)
            return
        }
        // Every tag of a node, up to three, then how many more.
        func name(_ node: Lineage.Node) -> String {
            guard !node.tags.isEmpty else { return node.digest.short }
            let more = node.tags.count > 3 ? " +\(node.tags.count - 3) more" : ""
            return node.tags.prefix(3).joined(separator: ", ") + more + " (\(node.digest.short))"
        }
        // The subject under the tag it was asked by, when it was asked by one of its tags.
        let asked = parsed.tag.map { _ in parsed.description }.flatMap { lineage.subject.tags.contains($0) ? $0 : nil }
        print("\(lineage.subject.kind.rawValue) \(asked.map { "\($0) (\(lineage.subject.digest.short))" } ?? name(lineage.subject))")
        if let base = lineage.base { print("  base     \(name(base))") }
        for adapter in lineage.adapters {
            print("  adapter  \(name(adapter)) weight \(adapter.weight.map { String($0) } ?? "1")")
        }
        for adapter in lineage.derivedAdapters { print("  adapter  \(name(adapter))") }
        for build in lineage.derivedBuilds { print("  build    \(name(build))") }
        if lineage.subject.kind != .build && lineage.derivedBuilds.isEmpty {
            print("  no builds use it")
        }
    }
}
