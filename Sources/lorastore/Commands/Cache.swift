import ArgumentParser
import Foundation
import LoraStoreCore

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The cache of materialized builds: budget, status, pins.",
        subcommands: [Status.self, Budget.self, Pin.self, Unpin.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show usage, budget and each build's state.")

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let status = try global.openStore().cacheStatus()
            if global.json {
                try Output.json(status)
                return
            }
            print("cache: \(Output.bytes(status.usage)) used of \(status.budget.map(Output.bytes) ?? "unlimited")")
            guard !status.builds.isEmpty else {
                print("no builds yet: `lorastore build create NAME --base REF --adapter REF`")
                return
            }
            let formatter = ISO8601DateFormatter()
            var rows = [["BUILD", "DIGEST", "STATE", "PINNED", "STORED", "MERGED SIZE", "LAST PULL"]]
            for build in status.builds {
                rows.append([
                    build.tags.first ?? "(untagged)", build.digest.short, build.state.rawValue, build.pinned ? "yes" : "no",
                    Output.bytes(build.storedBytes), Output.bytes(build.logicalBytes),
                    build.lastPulledAt.map(formatter.string(from:)) ?? "never",
                ])
            }
            Output.table(rows)
        }
    }

    struct Budget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the byte budget for materialized builds (e.g. 50GB), or `none` for unlimited.")

        @Argument(help: "The budget, e.g. 50GB, or none.")
        var size: String

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let bytes: Int?
            if size.lowercased() == "none" || size.lowercased() == "unlimited" {
                bytes = nil
            } else {
                guard let parsed = ByteSize(argument: size) else { throw CommandError("\(size) is not a size like 50GB") }
                bytes = parsed.bytes
            }
            let evicted = try global.openStore().setCacheBudget(bytes)
            if global.json {
                try Output.json(BudgetChange(budget: bytes, evicted: evicted))
                return
            }
            print("cache budget: \(bytes.map(Output.bytes) ?? "unlimited")")
            for digest in evicted { print("  evicted build \(digest.short)") }
        }
    }

    /// `cache budget --json`: the budget in bytes (null for unlimited) and the builds evicted to meet it.
    struct BudgetChange: Encodable {
        let budget: Int?
        let evicted: [Digest]

        enum CodingKeys: String, CodingKey { case budget, evicted }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(budget, forKey: .budget)
            try container.encode(evicted, forKey: .evicted)
        }
    }

    /// `cache pin --json` and `cache unpin --json`: the build and whether it is now pinned.
    /// `cache pin|unpin --json`: the build, its new state, and the builds evicted to meet the budget.
    struct PinChange: Encodable {
        let reference: String
        let pinned: Bool
        let evicted: [Digest]
    }

    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Never evict this build.")

        @Argument var reference: String
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.openStore().setPinned(try parseReference(reference), true)
            if global.json { return try Output.json(PinChange(reference: reference, pinned: true, evicted: [])) }
            print("pinned \(reference)")
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let this build be evicted again.")

        @Argument var reference: String
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let evicted = try global.openStore().setPinned(try parseReference(reference), false)
            if global.json { return try Output.json(PinChange(reference: reference, pinned: false, evicted: evicted)) }
            print("unpinned \(reference)")
            for digest in evicted { print("  evicted build \(digest.short) to stay within the cache budget") }
        }
    }
}
