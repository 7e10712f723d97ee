import Foundation
import LoraStoreCore

/// The storage savings of a realistic store: one base, 50 adapters, 100 builds, some of them pulled.
enum SavingsBenchmarks {
    static let adapterCount = 50
    static let buildCount = 100
    /// The builds pulled (materialized): two single-adapter builds and one mix of two adapters.
    static let pulled = [0, 1, 50]

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let dtype = DType.bf16
        let (model, folder) = try workspace.base(dtype)
        let store = try Store(root: workspace.fresh("savings-store"))
        defer { try? FileManager.default.removeItem(at: store.root) }
        let base = try Reference(parsing: "savings/base:v1")
        let attention: [LlamaProjection] = [.query, .key, .value, .output]
        let ranks = [8, 16, 32]

        var pushSeconds = try Timing.seconds { try store.push(folder, to: base) }
        var adapters: [Reference] = []
        var generateSeconds = 0.0
        for index in 0..<adapterCount {
            let rank = ranks[index % ranks.count]
            let targets = index % 2 == 0 ? LlamaProjection.allCases : attention
            let adapterFolder = workspace.fresh("savings-adapter")
            generateSeconds += try Timing.seconds {
                try SyntheticAdapter(base: model, rank: rank, targets: targets, seed: UInt64(5000 + index)).write(to: adapterFolder)
            }
            let reference = try Reference(parsing: "savings/adapter-\(index):v1")
            pushSeconds += try Timing.seconds { try store.push(adapterFolder, to: reference, options: PushOptions(base: base)) }
            try? FileManager.default.removeItem(at: adapterFolder)
            adapters.append(reference)
        }
        // 50 single-adapter builds, then 50 weighted mixes of two neighbouring adapters.
        var buildNames: [String] = []
        let recordSeconds = try Timing.seconds {
            for index in 0..<buildCount {
                let recipe: [(reference: Reference, weight: Double)] = index < adapterCount
                    ? [(adapters[index], 1.0)]
                    : [(adapters[index - adapterCount], 0.7), (adapters[(index - adapterCount + 1) % adapterCount], 0.3)]
                let tag = try Reference(parsing: "savings/build-\(index):v1")
                try store.createBuild(base: base, adapters: recipe, tag: tag)
                buildNames.append(tag.description)
            }
        }
        Workspace.flush()

        report.begin(
            "Storage savings",
            method: [
                "One store: the generated \(dtype.rawValue) base (\(Format.bytes(model.byteCount)) of tensors), "
                    + "\(adapterCount) generated PEFT adapters pushed against it (ranks \(ranks.map(String.init).joined(separator: ", ")) in turn, "
                    + "every other one on all seven projections, the rest on q, k, v, o; F32 factors; default codec policy: "
                    + "adapters compressed, base raw) and \(buildCount) build recipes (`Store.createBuild`: \(adapterCount) with one "
                    + "adapter at weight 1, \(buildCount - adapterCount) weighted 0.7/0.3 mixes of two). Figures from `Store.stats()`, "
                    + "which counts exactly what it names:",
                "- *logical*: every base and adapter as its files, plus one full merged model per build (the counterfactual "
                    + "of keeping plain folders). *stored*: the distinct referenced blob files on disk. *ratio* = logical / stored.",
                "- *dedup*, *compression*, *builds*: the bytes each mechanism saves (logical − dedup − compression − builds "
                    + "= stored). *index*: the SQLite files (not in stored).",
                "Rows: after recording the recipes (nothing merged), then after pulling \(pulled.count) builds with `Store.pull` "
                    + "(each pull merges once and stores only the tensors the adapters change; the pulled folders are deleted "
                    + "and not counted): " + pulled.map { "savings/build-\($0)" }.joined(separator: ", ")
                    + " (two single-adapter builds and one two-adapter mix).",
            ],
            columns: ["state", "logical", "stored", "ratio", "saved by dedup", "saved by compression", "saved by builds",
                      "index"])
        func addRow(_ state: String) throws -> StorageStats {
            let stats = try store.stats()
            report.row([
                state, Format.bytes(stats.logicalBytes), Format.bytes(stats.storedBytes),
                String(format: "%.1f×", stats.savingsRatio), Format.bytes(stats.dedupSavedBytes),
                Format.bytes(stats.compressionSavedBytes), Format.bytes(stats.buildSavedBytes), Format.bytes(stats.indexBytes),
            ])
            return stats
        }
        _ = try addRow("1 base, \(adapterCount) adapters, \(buildCount) recipes")
        var pullNotes: [String] = []
        for (count, index) in pulled.enumerated() {
            let destination = workspace.fresh("savings-pull")
            var result: PullResult?
            let seconds = try Timing.seconds { result = try store.pull(buildNames[index], to: destination) }
            try? FileManager.default.removeItem(at: destination)
            Workspace.flush()
            pullNotes.append("\(buildNames[index]) \(Format.seconds(seconds)) (\(Format.bytes(result?.bytes ?? 0)) written)")
            _ = try addRow("after pulling \(count + 1) build\(count == 0 ? "" : "s")")
        }
        let stats = try store.stats()
        func kindTotals(_ kind: ManifestKind) -> (count: Int, logical: Int, stored: Int) {
            let entries = stats.entries.filter { $0.kind == kind }
            return (entries.count, entries.reduce(0) { $0 + $1.logicalBytes }, entries.reduce(0) { $0 + $1.storedBytes })
        }
        let bases = kindTotals(.base)
        let adapterTotals = kindTotals(.adapter)
        let builds = kindTotals(.build)
        report.note(
            "By kind at the end (stored = each entry's referenced blobs, shared ones in full): \(bases.count) base "
                + "\(Format.bytes(bases.logical)) logical / \(Format.bytes(bases.stored)) stored; \(adapterTotals.count) adapters "
                + "\(Format.bytes(adapterTotals.logical)) / \(Format.bytes(adapterTotals.stored)) "
                + String(format: "(%.3f)", Double(adapterTotals.stored) / Double(max(adapterTotals.logical, 1)))
                + "; \(builds.count) builds \(Format.bytes(builds.logical)) as full merged models / \(Format.bytes(builds.stored)) "
                + "stored (the changed tensors of the \(pulled.count) pulled builds).")
        report.note(
            "Setup times: pushes of the base and \(adapterCount) adapters \(Format.seconds(pushSeconds)) (adapter generation "
                + "\(Format.seconds(generateSeconds)) besides); \(buildCount) recipes \(Format.seconds(recordSeconds)); "
                + "cold pulls: " + pullNotes.joined(separator: "; ") + ".")
    }
}
