import ArgumentParser
import Foundation
import LoraStoreCore

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole story on generated data: push a base and adapters, build, pull merged, show savings.",
        discussion: """
            Generates a Llama-shaped base (BF16, about --size bytes) and four PEFT adapters of different ranks and \
            targets, written exactly as transformers and PEFT write them; pushes them into the store; records four \
            builds, one a weighted mix of two adapters; pulls that one as a merged model folder; and prints the \
            storage savings. Running it again reuses what is stored.
            """)

    @Option(help: "Approximate size of the generated base model (e.g. 300MB, 2GB).")
    var size = ByteSize(bytes: 300_000_000)

    @Option(name: .shortAndLong, help: "Where to write the merged model (default: demo-output/ inside the store).")
    var output: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard size.bytes >= DemoScenario.minimumBaseBytes else {
            throw ValidationError(
                "--size: \(size.bytes) bytes is too small for the demo's base; give at least \(DemoScenario.minimumBaseBytes)")
        }
    }

    func run() throws {
        let store = try global.openStore(creating: true)
        let destination = output.map { URL(fileURLWithPath: $0) }
            ?? store.root.appending(path: "demo-output/support-legal-v1")
        let progress = ProgressBar(quiet: global.json)
        let quiet = global.json
        let report = try DemoScenario(baseBytes: size.bytes, output: destination, replacesOutput: output == nil).run(
            store: store,
            step: { phase in
                progress.finish()
                if !quiet { Swift.print("==> \(phase)") }
            },
            progress: progress.handler)
        progress.finish()
        if global.json {
            try Output.json(report)
            return
        }
        print("")
        for push in report.pushes {
            let stored = push.newBlobs == 0 ? "already stored" : "\(Output.bytes(push.newStoredBytes)) new on disk"
            print("pushed \(push.kind.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(push.reference.padding(toLength: 22, withPad: " ", startingAt: 0)) \(Output.bytes(push.logicalBytes).padding(toLength: 9, withPad: " ", startingAt: 0)) \(stored)")
        }
        for build in report.builds {
            print("build   \(build.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(build.digest.short)")
        }
        if let pull = report.pull {
            let how = pull.merged ? "merged on this pull" : "from the cache, no merging"
            print("pulled  \(DemoScenario.pulledBuild) into \(pull.destination) (\(Output.bytes(pull.bytes)), \(how))")
        }
        let total = report.seconds.values.reduce(0, +)
        print(String(format: "done in %.1f s", total))
        if let stats = report.stats {
            print("")
            StatsTable.print(stats)
        }
        let storeOption = global.store.map { " --store \(Self.shellQuoted($0))" } ?? ""
        let command = Self.invocation
        print("""

            Next, try:
              \(command) ls\(storeOption)
              \(command) show demo/coder:v1\(storeOption)
              \(command) lineage demo/support:v1\(storeOption)
              \(command) pull demo/polite-support:v1 -o ./polite-support\(storeOption)
              \(command) pull 'demo/llama:v1+demo/legal:v1@0.5' -o ./half-legal\(storeOption)
              \(command) cache status\(storeOption)
              \(command) stats --json\(storeOption)
            """)
    }

    /// How to call this binary from the current folder: `lorastore` when that is what the shell finds, else
    /// its path (relative when it is below the current folder, as `.build/release/lorastore` after
    /// `swift run`).
    private static var invocation: String {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        let resolved = binary.resolvingSymlinksInPath().path
        let onPath = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains { folder in
            URL(fileURLWithPath: String(folder)).appending(path: "lorastore").resolvingSymlinksInPath().path == resolved
        }
        if onPath { return "lorastore" }
        let current = FileManager.default.currentDirectoryPath + "/"
        return shellQuoted(binary.path.hasPrefix(current) ? String(binary.path.dropFirst(current.count)) : binary.path)
    }

    /// `text` as one shell word: as it is when that is safe, else in single quotes.
    private static func shellQuoted(_ text: String) -> String {
        let safe = text.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-+:@=".unicodeScalars.contains($0) }
        return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
