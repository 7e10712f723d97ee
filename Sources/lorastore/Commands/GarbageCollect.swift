import ArgumentParser
import Foundation
import LoraStoreCore

struct GarbageCollect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove untagged manifests, unreferenced blobs and stray files older than the grace period.")

    @Flag(help: "Report what would be removed without removing it.")
    var dryRun = false

    @Option(help: "Keep anything younger than this: 30s, 10m, 1h, 2d, or seconds (default 1h).")
    var grace: String = "1h"

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let seconds = Self.duration(grace) else { throw CommandError("--grace \(grace): write e.g. 30s, 10m, 1h or 2d") }
        let report = try global.openStore().collectGarbage(grace: seconds, dryRun: dryRun)
        if global.json {
            try Output.json(report)
            return
        }
        let verb = dryRun ? "would remove" : "removed"
        print("\(verb) \(report.manifests.count) manifest(s), \(report.blobs.count) blob(s) and \(report.strayFiles.count) stray file(s): \(Output.bytes(report.freedBytes)) \(dryRun ? "to free" : "freed")")
        for digest in report.manifests { print("  manifest \(digest)") }
        for digest in report.blobs { print("  blob     \(digest)") }
        for path in report.strayFiles { print("  file     \(path)") }
        if report.keptForGrace > 0 {
            print("kept \(report.keptForGrace) item(s) younger than \(grace)")
        }
        if report.keptInUse > 0 {
            print("kept \(report.keptInUse) untagged build(s) being pulled or served")
        }
    }

    /// Seconds in `30s`, `10m`, `1h`, `2d` or a plain number of seconds.
    static func duration(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let last = text.last, let unit = units[last] {
            return Double(text.dropLast()).flatMap { $0 >= 0 ? $0 * unit : nil }
        }
        return Double(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
