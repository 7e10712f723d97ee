import Foundation
import LoraStoreCore

/// Merging generated adapters into a generated base, as fractions of the read-and-rewrite bandwidth.
enum MergeBenchmarks {
    /// One merge case: `count` adapters of `rank` on all seven projections of every layer.
    struct Case {
        let rank: Int
        let count: Int
    }

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        report.begin(
            "Merge",
            method: [
                "A generated Llama-shaped base (TinyLlama's shape, layers scaled to the size) and generated PEFT adapters on "
                    + "q, k, v, o, gate, up and down of every layer (B non-zero, alpha = 2r, adapter factors F32, pushed "
                    + "with the default policy, so compressed) are pushed into a store, untimed. Then:",
                "- *compute*: `MergePlan` + `MergeEngine.run` (\(cores) threads) with a sink that discards the bytes: the "
                    + "store's read path, the adapters' decoding and the fused kernel, no output file. Best of \(options.repetitions).",
                "- *to folder*: `Store.merge` writing the model folder (safetensors with SHA-256, fsync), then deleted. One run.",
                "*base rate* = all base tensor bytes / time, as a fraction of the in-place read-and-rewrite bandwidth "
                    + "(\(Format.rate(references.readRewrite)), \(cores) threads). Untouched tensors (embeddings, head, norms) "
                    + "cost the compute case nothing, so *changed rate* also gives the bytes of the tensors the adapters change "
                    + "per second of the whole run. For *to folder*, the last column is the fraction of the reference file "
                    + "copy with fsync (\(Format.rate(references.fileCopySynced))).",
            ],
            columns: ["base", "rank × adapters", "adapter bytes", "compute: base rate (× read-rewrite)",
                      "compute: changed rate (×)", "to folder: base rate (× read-rewrite)", "to folder (× synced copy)"])
        let cases = options.ranks.map { Case(rank: $0, count: 1) }
            + options.adapterCounts.filter { $0 > 1 }.map { Case(rank: 16, count: $0) }
        var rank16: [String: Double] = [:]
        for dtype in options.mergeDTypes.compactMap(DType.init(rawValue:)) {
            let (model, folder) = try workspace.base(dtype)
            let store = try Store(root: workspace.fresh("merge-store-\(dtype.rawValue.lowercased())"))
            defer { try? FileManager.default.removeItem(at: store.root) }
            let base = try Reference(parsing: "synthetic/base")
            try store.push(folder, to: base)
            var adapters: [Int: [Reference]] = [:]
            for rank in Set(cases.map(\.rank)).sorted() {
                let count = cases.filter { $0.rank == rank }.map(\.count).max() ?? 1
                for index in 0..<count {
                    let adapterFolder = workspace.fresh("adapter-\(dtype.rawValue.lowercased())-r\(rank)-\(index)")
                    try SyntheticAdapter(base: model, rank: rank, seed: UInt64(1000 + 10 * rank + index)).write(to: adapterFolder)
                    let reference = try Reference(parsing: "synthetic/adapter-r\(rank)-\(index)")
                    try store.push(adapterFolder, to: reference, options: PushOptions(base: base))
                    try? FileManager.default.removeItem(at: adapterFolder)
                    adapters[rank, default: []].append(reference)
                }
            }
            Workspace.flush()
            let baseManifest = try store.resolve(base)
            let baseBytes = baseManifest.manifest.tensors.reduce(0) { $0 + $1.size }
            for mergeCase in cases {
                let chosen = Array((adapters[mergeCase.rank] ?? []).prefix(mergeCase.count))
                let selections = try chosen.map { WeightedAdapter(digest: try store.resolve($0).digest, weight: 1) }
                let adapterBytes = try chosen.reduce(0) { $0 + (try store.resolve($1).manifest.logicalSize) }
                var changedBytes = 0
                let compute = try Timing.best(options.repetitions) {
                    let plan = try MergePlan(base: baseManifest, adapters: selections, options: MergeOptions(), store: store)
                    changedBytes = plan.tensors.filter(\.isChanged).reduce(0) { $0 + $1.base.size }
                    var seen = 0
                    try MergeEngine(plan: plan, store: store).run { _, bytes in seen &+= bytes.count }
                    guard seen == plan.outputBytes else { throw IncompleteMerge(expected: plan.outputBytes, seen: seen) }
                }
                let destination = workspace.fresh("merged")
                let full = try Timing.seconds {
                    try store.merge(base: base, adapters: chosen.map { ($0, 1.0) }, to: destination)
                }
                try? FileManager.default.removeItem(at: destination)
                Workspace.flush()
                let computeRate = Double(baseBytes) / compute
                let fullRate = Double(baseBytes) / full
                if mergeCase.rank == 16, mergeCase.count == 1 {
                    rank16[dtype.rawValue] = computeRate / references.readRewrite
                }
                report.row([
                    "\(dtype.rawValue) \(Format.bytes(baseBytes))", "\(mergeCase.rank) × \(mergeCase.count)",
                    Format.bytes(adapterBytes),
                    Format.rate(computeRate, of: references.readRewrite),
                    Format.rate(Double(changedBytes) / compute, of: references.readRewrite),
                    Format.rate(fullRate, of: references.readRewrite),
                    Format.ratio(fullRate / references.fileCopySynced) + "×",
                ])
            }
        }
        for (dtype, fraction) in rank16.sorted(by: { $0.key < $1.key }) {
            report.note(
                "Target: merge at rank 16 ≥ 0.5 of the read-and-rewrite bandwidth. \(dtype), compute: "
                    + "\(Format.ratio(fraction)) — \(fraction >= 0.5 ? "met" : "not met").")
        }
    }

    /// The sink saw fewer or more bytes than the plan's output.
    struct IncompleteMerge: Error, CustomStringConvertible {
        let expected: Int
        let seen: Int

        var description: String { "the merge produced \(seen) bytes, expected \(expected)" }
    }
}
