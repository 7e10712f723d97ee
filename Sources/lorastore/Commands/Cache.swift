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
                guard let parsed = ByteSize(argument: size) else { throw ValidationError("\(size) is not a size like 50GB") }
                bytes = parsed.bytes
            }
            let evicted = try global.openStore().setCacheBudget(bytes)
            if global.json {
                try Output.json(["budget": bytes.map(String.init) ?? "unlimited", "evicted": evicted.map(\.description).joined(separator: ",")])
                return
            }
            print("cache budget: \(bytes.map(Output.bytes) ?? "unlimited")")
            for digest in evicted { print("  evicted build \(digest.short)") }
        }
    }

    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Never evict this build.")

        @Argument var reference: String
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.openStore().setPinned(try parseReference(reference), true)
            if !global.json { print("pinned \(reference)") }
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let this build be evicted again.")

        @Argument var reference: String
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.openStore().setPinned(try parseReference(reference), false)
            if !global.json { print("unpinned \(reference)") }
        }
    }
}
