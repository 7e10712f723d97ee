import ArgumentParser
import Foundation
import LoraStoreCore

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge adapters into a base now and write a model folder (no build is recorded).",
        discussion: """
            Each --adapter is REF[@WEIGHT]; the merged weight is W + Σ weight·scale·B·A, computed in F32 and
            rounded once to the output dtype. Tensors no adapter touches are copied bit-identical.
            """)

    @Option(help: "The base model reference.")
    var base: String

    @Option(name: .customLong("adapter"), help: "An adapter as REF[@WEIGHT] (repeatable, applied in order).")
    var adapters: [String] = []

    @Option(help: "Output dtype of floating-point tensors: F32, F16 or BF16 (default: each base tensor's).")
    var dtype: String?

    @Option(help: "exact (the weighted sum of deltas) or peft-linear (PEFT's linear combination).")
    var combine: String = CombineMode.exact.rawValue

    @Option(help: "Split the output into shards of at most this size (e.g. 5GB).")
    var maxShardSize: ByteSize?

    @Option(name: .shortAndLong, help: "The folder to write (must not exist, or be empty).")
    var output: String

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let options = try MergeOptions(
            outputType: dtype.map(parseDType), combine: parseCombine(combine), maxShardSize: maxShardSize?.bytes)
        let adapterArguments = try adapters.map(AdapterArgument.init(parsing:))
        let store = try global.openStore()
        let progress = ProgressBar()
        defer { progress.finish() }
        let result = try store.merge(
            base: try parseReference(base), adapters: adapterArguments.map { ($0.reference, $0.weight) },
            options: options, to: URL(fileURLWithPath: output), progress: progress.handler)
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        print("merged \(result.adapters.count) adapter(s) into \(result.base.short): \(result.changedTensors) of \(result.tensorCount) tensors changed")
        for (file, digest) in result.files.sorted(by: { $0.key < $1.key }) {
            print("  \(result.destination)/\(file)  \(digest.short)")
        }
    }
}

/// Parses a dtype argument (F32, F16, BF16; case-insensitive).
func parseDType(_ text: String) throws -> DType {
    guard let dtype = DType(rawValue: text.uppercased()), dtype.isMergeable else {
        throw ValidationError("dtype \(text): choose F32, F16 or BF16")
    }
    return dtype
}

/// Parses a combine mode argument.
func parseCombine(_ text: String) throws -> CombineMode {
    guard let mode = CombineMode(rawValue: text) else {
        throw ValidationError("combine \(text): choose exact or peft-linear")
    }
    return mode
}
