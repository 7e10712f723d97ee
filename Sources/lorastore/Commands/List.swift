import ArgumentParser
import Foundation
import LoraStoreClient
import LoraStoreCore

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List tagged bases, adapters and builds.")

    enum Filter: String, ExpressibleByArgument, CaseIterable {
        case bases, adapters, builds

        var kind: ManifestKind {
            switch self {
            case .bases: .base
            case .adapters: .adapter
            case .builds: .build
            }
        }
    }

    @Argument(help: "Show only bases, adapters or builds.")
    var filter: Filter?

    @OptionGroup var global: GlobalOptions

    @OptionGroup var remote: RemoteOptions

    func run() async throws {
        let entries = if let client = try remote.client() {
            try await client.list(kind: filter?.kind)
        } else {
            try global.openStore().list(kind: filter?.kind)
        }
        if global.json {
            try Output.json(entries)
            return
        }
        guard !entries.isEmpty else {
            print("nothing here yet: push a model with `lorastore push PATH NAME[:TAG]`")
            return
        }
        var rows = [["NAME", "KIND", "DIGEST", "SIZE", "RANK", "UPDATED"]]
        let formatter = ISO8601DateFormatter()
        for entry in entries {
            rows.append([
                "\(entry.repository):\(entry.tag)", entry.kind.rawValue, entry.digest.short,
                Output.bytes(entry.logicalSize), entry.rank.map(String.init) ?? "-", formatter.string(from: entry.updatedAt),
            ])
        }
        Output.table(rows)
    }
}
