import Foundation
import LoraStoreCore

/// Builds on quantized bases: for each scheme and policy, the output's size, the build time and the fidelity
/// report, next to float merges of the same adapter into the unquantized base.
enum QuantizationBenchmarks {
    static let rank = 16

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let model = SyntheticModel.sized(bytes: options.quick ? 64_000_000 : 300_000_000, dtype: .bf16, seed: 3)
        let modelFolder = workspace.fresh("quant-base")
        let generateSeconds = try Timing.seconds { try model.write(to: modelFolder) }
        let store = try Store(root: workspace.fresh("quant-store"))
        defer {
            try? FileManager.default.removeItem(at: store.root)
            try? FileManager.default.removeItem(at: modelFolder)
        }
        let base = try Reference(parsing: "synthetic/base:bf16")
        try store.push(modelFolder, to: base)
        let adapterFolder = workspace.fresh("quant-adapter")
        try SyntheticAdapter(base: model, rank: rank, seed: 77).write(to: adapterFolder)
        let adapter = try Reference(parsing: "synthetic/adapter:r\(rank)")
        try store.push(adapterFolder, to: adapter, options: PushOptions(base: base))
        try? FileManager.default.removeItem(at: adapterFolder)
        Workspace.flush()
        let d = model.dimensions
        let guardRail = 1.0

        report.begin(
            "Quantized bases: schemes × build policies",
            method: [
                "A generated BF16 Llama-shaped base (hidden \(d.hiddenSize), intermediate \(d.intermediateSize), \(model.layers) layers, "
                    + "vocab \(d.vocabularySize): \(Format.bytes(model.byteCount)) of tensors, generated in \(Format.seconds(generateSeconds))) "
                    + "and one generated rank-\(rank) PEFT adapter on all seven projections of every layer (F32 factors, alpha = 2r) "
                    + "are pushed into a fresh store, untimed.",
                "- *quantized base*: `Store.quantize` of the base in each scheme (every `*_proj.weight`; embeddings, head and norms "
                    + "stay BF16), timed; *output size* is the quantized base as plain files.",
                "- Each build is recorded with `Store.createBuild` (on the quantized base: `MergeOptions(quantizedBase: policy, "
                    + "maxAdapterLoss: \(guardRail))`, the guard rail opened so every combination runs; *dequantize* with "
                    + "`outputType` BF16) and materialized by its first `Store.pull` into a folder: *build time* is that cold pull "
                    + "(merge, fidelity measurement, build blobs and folder with fsync), one run. *output size* is every file of "
                    + "the pulled folder (for *separate*, the quantized base plus the adapter as a PEFT folder under `adapters/`).",
                "- Fidelity from `Store.buildReport` (totals over the touched tensors, against the exact F32 result): *survived* "
                    + "is the share of the adapter present in the output (1 = all), *rel. error* ‖W_out − W_exact‖ / ‖Δ‖, "
                    + "*probe error* the output error on fixed random inputs relative to the adapter's effect (0 = perfect, "
                    + "1 = adapter lost), *codes moved* the share of quantized codes the merge changed. *merged* is the output as "
                    + "written; *on the fly* is the stored base with the adapter applied at inference. *loss* is the rel. error "
                    + "of what the output applies (merged, or on the fly for *separate*); the default guard rail refuses a "
                    + "requantized build above \(MergeOptions.defaultQuantizedAdapterLoss).",
                "- The float rows merge the same adapter into the unquantized BF16 base with `outputType` F32 and BF16.",
            ],
            columns: ["base", "policy", "output size", "time", "merged: survived", "merged: rel. error",
                      "merged: probe error", "codes moved", "on the fly: survived", "on the fly: probe error", "loss",
                      "default guard rail"])

        // The float references.
        for output in [DType.f32, .bf16] {
            let options = MergeOptions(outputType: output)
            let tag = try Reference(parsing: "synthetic/build:float-\(output.rawValue.lowercased())")
            try store.createBuild(base: base, adapters: [(adapter, 1.0)], options: options, tag: tag)
            try buildRow(
                store: store, tag: tag, workspace: workspace, label: "BF16 (float)", policy: "merge to \(output.rawValue)",
                options: options, report: &report)
        }
        for scheme in QuantizationScheme.allCases {
            let quantized = try Reference(parsing: "synthetic/base:\(scheme.rawValue)")
            var result: PushResult?
            let seconds = try Timing.seconds { result = try store.quantize(base, scheme: scheme, to: quantized) }
            Workspace.flush()
            let size = try store.resolve(quantized).manifest.logicalSize
            report.row([
                scheme.rawValue, "quantized base (`Store.quantize`)", Format.bytes(size), Format.seconds(seconds),
                "–", "–", "–", "–", "–", "–", "–",
                "\(result?.quantization?.quantized.count ?? 0) weights quantized, \(result?.quantization?.kept.count ?? 0) kept",
            ])
            for policy in QuantizedBuildPolicy.allCases {
                let options = MergeOptions(
                    outputType: policy == .dequantize ? .bf16 : nil, quantizedBase: policy, maxAdapterLoss: guardRail)
                let tag = try Reference(parsing: "synthetic/build:\(scheme.rawValue)-\(policy.rawValue)")
                try store.createBuild(base: quantized, adapters: [(adapter, 1.0)], options: options, tag: tag)
                try buildRow(
                    store: store, tag: tag, workspace: workspace, label: scheme.rawValue,
                    policy: policy == .dequantize ? "dequantize to BF16" : policy.rawValue, options: options,
                    report: &report)
            }
        }
    }

    /// Pulls the build `tag` (its first, materializing pull), timed, and adds its row.
    static func buildRow(
        store: Store, tag: Reference, workspace: Workspace, label: String, policy: String, options: MergeOptions,
        report: inout BenchmarkReport
    ) throws {
        let destination = workspace.fresh("quant-pull")
        defer { try? FileManager.default.removeItem(at: destination) }
        let seconds: Double
        do {
            seconds = try Timing.seconds { try store.pull(tag.description, to: destination) }
        } catch {
            report.row([label, policy, "–", "–", "refused: \(error)", "–", "–", "–", "–", "–", "–", "–"])
            return
        }
        let size = try folderBytes(destination)
        Workspace.flush()
        guard let build = try store.buildReport(tag) else {
            report.row([label, policy, Format.bytes(size), Format.seconds(seconds), "no report", "–", "–", "–", "–", "–", "–", "–"])
            return
        }
        let merged = build.total.merged
        let fly = build.total.onTheFly
        let loss = build.adapterLoss
        // What the default guard rail (no maxAdapterLoss) would have done with this build.
        var defaults = options
        defaults.maxAdapterLoss = nil
        let verdict: String
        if let limit = defaults.effectiveMaxAdapterLoss {
            verdict = (loss ?? 0) > limit ? "refused (> \(limit))" : "passes (≤ \(limit))"
        } else {
            verdict = "no limit"
        }
        report.row([
            label, policy, Format.bytes(size), Format.seconds(seconds),
            share(merged.survivedShare), share(merged.relativeError), share(merged.probeRelativeError),
            share(merged.codesMovedShare), share(fly.survivedShare), share(fly.probeRelativeError), share(loss), verdict,
        ])
    }

    static func share(_ value: Double?) -> String {
        guard let value else { return "–" }
        return abs(value) >= 1e-3 || value == 0 ? String(format: "%.4f", value) : String(format: "%.2e", value)
    }

    /// Bytes of every regular file under `folder`.
    static func folderBytes(_ folder: URL) throws -> Int {
        guard let enumerator = FileManager.default.enumerator(
            at: folder, includingPropertiesForKeys: [.isRegularFileKey, .fileSizeKey])
        else { return 0 }
        var total = 0
        for case let url as URL in enumerator {
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .fileSizeKey])
            if values.isRegularFile == true { total += values.fileSize ?? 0 }
        }
        return total
    }
}
