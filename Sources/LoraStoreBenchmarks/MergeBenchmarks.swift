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
        let (method, columns) = header(options: options, references: references, cores: cores)
        report.begin("Merge", method: method, columns: columns)
        let cases = options.ranks.map { Case(rank: $0, count: 1) }
            + options.adapterCounts.filter { $0 > 1 }.map { Case(rank: 16, count: $0) }
        var rank16: [String: (fraction: Double, changedOnly: Double, runFraction: Double, ceiling: Double, alongside: Double)] =
            [:]
        // The highest read-and-rewrite rate on every core this run saw, at the start or alongside a case.
        var highestReadRewrite = references.readRewrite
        // The read-and-rewrite pass again, alternated with every merge: on a shared machine the bandwidth and
        // the CPU time a merge gets drift over a run, so each case is compared with the reference measured
        // alongside it rather than minutes before.
        let readRewriteBuffer = ScratchBuffer(byteCount: options.memoryReferenceSize)
        readRewriteBuffer.bytes.initializeMemory(as: UInt8.self, repeating: 1)
        var pass: UInt32 = 0
        var peftResults = PeftResults()
        for dtype in options.mergeDTypes.compactMap(DType.init(rawValue:)) {
            let (model, folder) = try workspace.base(dtype)
            let store = try Store(root: workspace.fresh("merge-store-\(dtype.rawValue.lowercased())"))
            defer { try? FileManager.default.removeItem(at: store.root) }
            let base = try Reference(parsing: "synthetic/base")
            try store.push(folder, to: base)
            var adapters: [Int: [(reference: Reference, folder: URL)]] = [:]
            defer {
                for adapter in adapters.values.joined() { try? FileManager.default.removeItem(at: adapter.folder) }
            }
            for rank in Set(cases.map(\.rank)).sorted() {
                let count = cases.filter { $0.rank == rank }.map(\.count).max() ?? 1
                for index in 0..<count {
                    let adapterFolder = workspace.fresh("adapter-\(dtype.rawValue.lowercased())-r\(rank)-\(index)")
                    try SyntheticAdapter(base: model, rank: rank, seed: UInt64(1000 + 10 * rank + index)).write(to: adapterFolder)
                    let reference = try Reference(parsing: "synthetic/adapter-r\(rank)-\(index)")
                    try store.push(adapterFolder, to: reference, options: PushOptions(base: base))
                    if options.peft.python == nil { try? FileManager.default.removeItem(at: adapterFolder) }
                    adapters[rank, default: []].append((reference, adapterFolder))
                }
            }
            Workspace.flush()
            let baseManifest = try store.resolve(base)
            let baseBytes = baseManifest.manifest.tensors.reduce(0) { $0 + $1.size }
            // The merged model in memory: every tensor at its own place, touched once before any timing so
            // that no case pays first-touch page faults, and far larger than the caches (huge pages, as the
            // reference buffers).
            let merged = ScratchBuffer(byteCount: baseBytes)
            merged.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            for mergeCase in cases {
                let chosen = Array((adapters[mergeCase.rank] ?? []).prefix(mergeCase.count))
                let chosenReferences = chosen.map(\.reference)
                let selections = try chosenReferences.map { WeightedAdapter(digest: try store.resolve($0).digest, weight: 1) }
                let adapterBytes = try chosenReferences.reduce(0) { $0 + (try store.resolve($1).manifest.logicalSize) }
                var changedBytes = 0
                var multiplyAdds = 0
                // The plan is part of each timed merge; both merges write each tensor at its own place in
                // `merged`, the second only the changed ones (the others stay in the base's blobs).
                func plan() throws -> MergePlan {
                    let plan = try MergePlan(base: baseManifest, adapters: selections, options: MergeOptions(), store: store)
                    guard plan.outputBytes <= merged.bytes.count else {
                        throw IncompleteMerge(expected: merged.bytes.count, seen: plan.outputBytes)
                    }
                    return plan
                }
                let wholeModel: () throws -> Void = {
                    let plan = try plan()
                    changedBytes = plan.tensors.filter(\.isChanged).reduce(0) { $0 + $1.base.size }
                    multiplyAdds = plan.tensors.reduce(0) { $0 + $1.multiplyAdds }
                    var seen = 0
                    try MergeEngine(plan: plan, store: store).run(into: { tensor in
                        defer { seen += tensor.byteCount }
                        return UnsafeMutableRawBufferPointer(rebasing: merged.bytes[seen ..< seen + tensor.byteCount])
                    })
                    guard seen == plan.outputBytes else { throw IncompleteMerge(expected: plan.outputBytes, seen: seen) }
                }
                let changedOnlyModel: () throws -> Void = {
                    let plan = try plan()
                    var offsets: [String: Int] = [:]
                    var offset = 0
                    for tensor in plan.tensors {
                        offsets[tensor.name] = offset
                        offset += tensor.byteCount
                    }
                    var seen = 0
                    try MergeEngine(plan: plan, store: store).run(unchanged: .leftInBase) { tensor in
                        let start = offsets[tensor.name] ?? 0
                        seen += tensor.byteCount
                        return UnsafeMutableRawBufferPointer(rebasing: merged.bytes[start ..< start + tensor.byteCount])
                    }
                    let expected = plan.tensors.filter { !$0.reusesBaseBytes }.reduce(0) { $0 + $1.byteCount }
                    guard seen == expected else { throw IncompleteMerge(expected: expected, seen: seen) }
                }
                let (readRewriteSeconds, merges) = try Timing.bestAlternating(
                    options.repetitions,
                    {
                        pass &+= 1
                        ReferenceBenchmarks.readRewrite(readRewriteBuffer.bytes, threads: cores, mask: pass)
                    }, [wholeModel, changedOnlyModel])
                let (compute, changedOnly) = (merges[0], merges[1])
                let destination = workspace.fresh("merged")
                defer { try? FileManager.default.removeItem(at: destination) }
                let full = try Timing.seconds {
                    try store.merge(base: base, adapters: chosenReferences.map { ($0, 1.0) }, to: destination)
                }
                Workspace.flush()
                let readRewrite = Double(options.memoryReferenceSize) / readRewriteSeconds
                highestReadRewrite = max(highestReadRewrite, readRewrite)
                let computeRate = Double(baseBytes) / compute
                let changedOnlyRate = Double(baseBytes) / changedOnly
                let fullRate = Double(baseBytes) / full
                // The time the multiply-adds alone take at the measured peak: no merge can be faster.
                let ceilingSeconds = Double(multiplyAdds) / references.multiplyAdds
                let ceilingRate = Double(baseBytes) / ceilingSeconds
                // No merge on this machine can be faster than this: the changed tensors read and written once at the
                // read-and-rewrite bandwidth, or the multiply-adds at their peak, whichever takes longer.
                let floorSeconds = max(Double(changedBytes) / readRewrite, ceilingSeconds)
                if mergeCase.rank == 16, mergeCase.count == 1 {
                    rank16[dtype.rawValue] = (
                        computeRate / readRewrite, changedOnlyRate / readRewrite, computeRate / references.readRewrite,
                        ceilingRate / readRewrite, readRewrite
                    )
                }
                var cells = [
                    "\(dtype.rawValue) \(Format.bytes(baseBytes))", "\(mergeCase.rank) × \(mergeCase.count)",
                    Format.bytes(adapterBytes), Format.rate(readRewrite),
                    Format.rate(computeRate, of: readRewrite),
                    Format.rate(Double(changedBytes) / compute, of: readRewrite),
                    Format.rate(changedOnlyRate, of: readRewrite),
                    Format.ratio(ceilingRate / readRewrite) + "×",
                    Format.ratio(ceilingSeconds / compute) + "×",
                    Format.rate(fullRate, of: readRewrite),
                    Format.ratio(fullRate / references.fileCopySynced) + "×",
                ]
                switch options.peft {
                case .off:
                    break
                case .skipped:
                    cells += ["skipped", "–", "–", "–", "–"]
                case .run where !PeftMerge.measures(mergeCase, adapterCounts: options.adapterCounts):
                    cells += ["not run", "–", "–", "–", "–"]
                case .run(let python):
                    let label = "\(mergeCase.rank) × \(mergeCase.count)"
                    do {
                        let peft = try PeftMerge.measure(
                            python: python, base: folder, adapters: chosen.map(\.folder), compare: destination,
                            baseBytes: baseBytes, repetitions: options.repetitions, threads: cores, scratch: workspace.root)
                        peftResults.add(
                            peft, label: label, dtype: dtype.rawValue,
                            speedup: (peft.seconds / compute, peft.seconds / changedOnly),
                            bound: peft.seconds / floorSeconds)
                        cells += [
                            "\(Format.seconds(peft.seconds)) (\(Format.rate(Double(baseBytes) / peft.seconds)))",
                            Format.ratio(peft.seconds / compute) + "×", Format.ratio(peft.seconds / changedOnly) + "×",
                            Format.ratio(peft.seconds / full) + "×",
                            Format.ratio(peft.seconds / floorSeconds) + "×",
                        ]
                    } catch {
                        peftResults.failures.append("\(dtype.rawValue) \(label): \(error)")
                        cells += ["failed", "–", "–", "–", "–"]
                    }
                }
                report.row(cells)
            }
        }
        for (dtype, figures) in rank16.sorted(by: { $0.key < $1.key }) {
            report.note(
                "Target: merge at rank 16 ≥ 0.5 of the read-and-rewrite bandwidth. \(dtype), compute: "
                    + "\(Format.ratio(figures.fraction)) of the bandwidth measured alongside — "
                    + "\(figures.fraction >= 0.5 ? "met" : "not met") (\(Format.ratio(figures.runFraction)) of the "
                    + "run's reference measured at the start); changed only: \(Format.ratio(figures.changedOnly)) — "
                    + "\(figures.changedOnly >= 0.5 ? "met" : "not met"); its multiply-adds alone, at this machine's "
                    + "peak, allow at most \(Format.ratio(figures.ceiling)).")
            // A reference that a second core did not raise, or far below the run's best, flatters the ratio.
            if cores > 1, figures.alongside < 1.25 * references.readRewriteSingle || figures.alongside < 0.75 * highestReadRewrite {
                report.note(
                    "\(dtype) rank 16: the read-and-rewrite pass alongside measured \(Format.rate(figures.alongside)) on "
                        + "\(cores) threads, against \(Format.rate(references.readRewriteSingle)) on 1 thread at the start and "
                        + "up to \(Format.rate(highestReadRewrite)) on \(cores) elsewhere in this run: the machine gave this case "
                        + "less memory bandwidth than it can (the host or a neighbour busy), which makes its ratio higher "
                        + "than in a run where it does not.")
            }
        }
        switch options.peft {
        case .off: break
        case .skipped(let reason): report.note("PEFT skipped: \(reason)")
        case .run: peftResults.addNotes(to: &report)
        }
    }

    /// The section's method text and columns; PEFT's only when requested.
    static func header(
        options: BenchmarkOptions, references: ReferenceBandwidths, cores: Int
    ) -> (method: [String], columns: [String]) {
        var method = [
            "A generated Llama-shaped base (TinyLlama's shape, layers scaled to the size) and generated PEFT adapters on "
                + "q, k, v, o, gate, up and down of every layer (B non-zero, alpha = 2r, adapter factors F32, pushed "
                + "with the default policy, so compressed) are pushed into a store, untimed. Then:",
            "- *compute*: `MergePlan` + `MergeEngine.run(into:)` (\(cores) threads) writing the merged model into memory: "
                + "the store's read path, the adapters' decoding, the fused kernel writing each changed tensor once at its "
                + "own place in a model-sized buffer (touched before timing, far larger than the caches), and a copy of "
                + "every untouched tensor there (embeddings, head, norms: read and written once, as the reference "
                + "charges them); no output file. Best of \(options.repetitions) in one process: after the first, the "
                + "base's tensor files are still mapped (the store keeps raw blobs mapped between reads, as for a server "
                + "merging one build after another), as PEFT's weights are in memory. Each repetition first runs the "
                + "read-and-rewrite pass of Reference bandwidths once more (\(cores) threads, its own "
                + "\(Format.bytes(options.memoryReferenceSize)) buffer), timed: *read-rewrite alongside* is the best of "
                + "those (taken apart from the merge's best), and every *×* in this table is against it, so that a merge "
                + "and its reference are measured over the same minutes of a machine whose bandwidth and CPU share "
                + "drift over a run.",
            "- *changed only*: the same merge with `MergeEngine.run(unchanged: .leftInBase, into:)`, timed in the "
                + "same rounds: only the tensors the adapters change are computed, each written at its own place in the "
                + "same buffer; the untouched ones are neither read nor copied, since they are the base's own blobs, "
                + "which a caller holding the merged model in memory maps (shared by every merge of that base) and a "
                + "build stores no copy of. This is the counterpart of PEFT's in-place merge, which leaves untouched weights where "
                + "they are; its *base rate* still divides all base tensor bytes by its time.",
            "- *to folder*: `Store.merge` writing the model folder (safetensors with SHA-256, fsync), then deleted. One run.",
        ]
        var columns = ["base", "rank × adapters", "adapter bytes", "read-rewrite alongside", "compute: base rate (× read-rewrite)",
                       "compute: changed rate (×)", "changed only: base rate (×)", "FMA ceiling (× read-rewrite)",
                       "compute ÷ ceiling",
                       "to folder: base rate (× read-rewrite)", "to folder (× synced copy)"]
        if options.peft.isRequested {
            method.append(
                "- *PEFT*: `scripts/peft_merge_bench.py`, a subprocess on the same base folder and adapter folders "
                    + "(kept until then): each repetition loads the base with transformers "
                    + "(`LlamaForCausalLM.from_pretrained`, the base's type, CPU) and the adapters with PEFT "
                    + "(`PeftModel.from_pretrained`, then `load_adapter`) and clones every parameter out of "
                    + "transformers' copy-on-write mapping of the file (so the merge pays no page copies), untimed, and times "
                    + "`merge_and_unload(adapter_names=<all>)`, which adds each adapter's scaling · B·A to the weights in "
                    + "turn: lorastore's exact sum with weight 1 each. torch on \(cores) threads, best of up to "
                    + "\(options.repetitions) with a fresh load before each (none starts once \(PeftMerge.budget) s, loads "
                    + "included, have passed). Timed on the single-adapter cases and the one with the most adapters only, "
                    + "to bound the run's time. *× PEFT* = PEFT's time / lorastore's time, so "
                    + "above 1 means lorastore is faster. The fair pair is *changed only* against `merge_and_unload`: "
                    + "both exclude writing a file and leave untouched weights in place, and *changed only* still "
                    + "includes reading the base from the store and decoding the adapters, which PEFT's figure leaves out "
                    + "with the load; *compute* also copies every untouched tensor. The script also checks two "
                    + "merged tensors (layer 0's q_proj, the last layer's down_proj) of PEFT's model against the *to "
                    + "folder* output. *floor × PEFT* = PEFT's time / the least time any merge could take on this "
                    + "machine: the changed tensors read and written once at the read-and-rewrite bandwidth, or their "
                    + "multiply-adds at the measured peak, whichever is longer. Where it is below 10, a 10× speed-up "
                    + "over PEFT is out of reach here.")
            columns += ["PEFT merge_and_unload", "compute × PEFT", "changed only × PEFT", "to folder × PEFT", "floor × PEFT"]
        }
        method.append(
            "*base rate* = all base tensor bytes / time, as a fraction of the read-and-rewrite bandwidth alongside. "
                + "*changed rate* gives the bytes of the tensors "
                + "the adapters change per second of the whole run (the untouched tensors' copy included); the generated "
                + "base has TinyLlama's vocabulary but fewer layers, so its untouched share is larger than a real model's. "
                + "PEFT merges in place and copies nothing for untouched tensors. *FMA ceiling* is the base rate the merge "
                + "would have if it took only the time of its multiply-adds (rows × columns × rank of every changed matrix) at the measured fused multiply-add "
                + "peak (\(String(format: "%.1f G/s", references.multiplyAdds / 1e9)), \(cores) threads): the bound compute "
                + "puts on any kernel that keeps the F32 arithmetic; *compute ÷ ceiling* is how close the merge gets to it. "
                + "*to folder (× synced copy)* is the fraction of the reference file copy "
                + "with fsync (\(Format.rate(references.fileCopySynced))).")
        return (method, columns)
    }

    /// The sink saw fewer or more bytes than the plan's output.
    struct IncompleteMerge: Error, CustomStringConvertible {
        let expected: Int
        let seen: Int

        var description: String { "the merge produced \(seen) bytes, expected \(expected)" }
    }

    /// The PEFT measurements of a run, summarised in the notes.
    struct PeftResults {
        /// One case's `merge_and_unload` time over lorastore's, compute (the whole model) and changed only, and
        /// the most any merge could reach (PEFT's time / the machine's floor).
        struct Speedup {
            let label: String
            let compute: Double
            let changedOnly: Double
            let bound: Double
        }

        /// The speed-ups per merged type.
        var speedups: [String: [Speedup]] = [:]
        var measurements: [PeftMerge.Measurement] = []
        /// Cases whose merged tensors differ from lorastore's beyond the tolerance.
        var mismatches: [String] = []
        /// Cases PEFT could not be measured on, with the reason.
        var failures: [String] = []

        mutating func add(
            _ measurement: PeftMerge.Measurement, label: String, dtype: String,
            speedup: (whole: Double, changedOnly: Double), bound: Double
        ) {
            measurements.append(measurement)
            speedups[dtype, default: []].append(
                Speedup(label: label, compute: speedup.whole, changedOnly: speedup.changedOnly, bound: bound))
            if let comparison = measurement.comparison, !comparison.matches {
                let outside = comparison.tensors.filter { !$0.withinTolerance }
                    .map { "\($0.tensor) up to \(String(format: "%.3g", $0.maxAbsDifference))" }
                mismatches.append("\(dtype) \(label): \(outside.joined(separator: ", "))")
            }
        }

        func addNotes(to report: inout BenchmarkReport) {
            for (dtype, cases) in speedups.sorted(by: { $0.key < $1.key }) {
                func range(_ ratio: KeyPath<Speedup, Double>) -> String {
                    guard let slowest = cases.min(by: { $0[keyPath: ratio] < $1[keyPath: ratio] }),
                          let fastest = cases.max(by: { $0[keyPath: ratio] < $1[keyPath: ratio] })
                    else { return "no cases" }
                    return "\(Format.ratio(slowest[keyPath: ratio]))× (\(slowest.label)) to "
                        + "\(Format.ratio(fastest[keyPath: ratio]))× (\(fastest.label)) over \(cases.count) cases — "
                        + (slowest[keyPath: ratio] >= 10 ? "met" : "not met")
                }
                report.note(
                    "Target: merge ≥ 10× faster than PEFT's merge_and_unload on CPU (both without load). \(dtype), "
                        + "changed only against merge_and_unload (untouched tensors left where they are in both): "
                        + "\(range(\.changedOnly)); compute, which also copies every untouched tensor: \(range(\.compute)).")
                let outOfReach = cases.filter { $0.bound < 10 }
                    .map { "\($0.label): at most \(Format.ratio($0.bound))×" }
                if !outOfReach.isEmpty {
                    report.note(
                        "\(dtype): 10× is out of reach on this machine in \(outOfReach.count) of \(cases.count) cases, "
                            + "since even a merge at the floor (memory traffic at the read-and-rewrite bandwidth, "
                            + "multiply-adds at peak) would be slower: \(outOfReach.joined(separator: "; ")).")
                }
            }
            if let first = measurements.first {
                let versions = ["torch", "transformers", "peft"].map { "\($0) \(first.versions[$0] ?? "?")" }
                let load = measurements.map(\.loadSeconds)
                report.note(
                    "PEFT: \(versions.joined(separator: ", ")), \(first.threads) torch threads; loading base and "
                        + "adapters and cloning the parameters (untimed) took \(Format.seconds(load.min() ?? 0)) to \(Format.seconds(load.max() ?? 0)).")
            }
            let compared = measurements.compactMap(\.comparison)
            if !compared.isEmpty {
                report.note(
                    "Merged weights: PEFT's equal lorastore's within tolerance in \(compared.count - mismatches.count) "
                        + "of \(compared.count) cases (two tensors each; per element, difference ≤ n · eps · "
                        + "(|lorastore's value| + the tensor's RMS), n the adapters, eps 2^-7 for BF16, 2^-10 for F16, "
                        + "2^-23 for F32: about one rounding per adapter, as PEFT rounds after each adapter and lorastore "
                        + "once).")
            }
            for mismatch in mismatches { report.note("Merged weights differ beyond the tolerance: \(mismatch).") }
            for failure in failures { report.note("PEFT failed on \(failure)") }
        }
    }
}
