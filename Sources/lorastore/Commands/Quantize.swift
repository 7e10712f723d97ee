import ArgumentParser
import Foundation
import LoraStoreCore

extension QuantizationScheme: ExpressibleByArgument {}

struct Quantize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a quantized copy of a base model.",
        discussion: """
            Quantizes the base's 2-D projection weights (*_proj.weight) in SCHEME and tags the copy. Everything \
            else (embeddings, norms, the head, configs) is shared with the original, not stored again. \
            int8-row: one F32 scale per row. q8_0 and q4_0: ggml's blocks of 32, each row byte for byte as ggml \
            quantizes it; a weight whose rows are not a multiple of 32 long is kept as it is (listed), or refused \
            when named with --tensor. `lorastore pull` writes the codes and scales; `pull --dequantize F16` \
            writes float weights.
            """)

    @Argument(help: "The base to quantize.")
    var reference: String

    @Option(help: "int8-row, q8_0 or q4_0.")
    var scheme: QuantizationScheme

    @Option(name: [.customShort("t"), .long], help: "Where to tag the quantized copy: NAME[:TAG].")
    var tag: String

    @Option(name: .customLong("tensor"), help: "Quantize this weight (repeatable; default: every projection weight).")
    var tensors: [String] = []

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let base = try parseReference(reference)
        let target = try parseReference(tag)
        let progress = ProgressBar(quiet: global.json)
        let result: PushResult
        result = try global.openStore().quantize(
            base, scheme: scheme, to: target, tensors: tensors.isEmpty ? nil : tensors, progress: progress.handler)
        progress.finish()
        if global.json {
            try Output.json(result)
            return
        }
        print("quantized \(reference) as \(result.reference) \(result.digest)")
        Self.describe(result)
    }

    /// Prints what a quantizing push or `quantize` stored.
    static func describe(_ result: PushResult) {
        guard let summary = result.quantization else { return }
        print("  \(summary.quantized.count) weights in \(summary.scheme.rawValue), \(result.tensorCount) tensors, \(Output.bytes(result.logicalBytes))")
        print("  stored \(result.newBlobs) new blobs (\(Output.bytes(result.newStoredBytes)) on disk), shared \(Output.bytes(result.reusedBytes))")
        // A model whose every layer keeps the same weight (a row length the scheme cannot store) would bury
        // the summary: five are listed, the rest counted (all of them are in --json).
        for kept in summary.kept.prefix(5) {
            print("  kept \(kept)")
        }
        if summary.kept.count > 5 {
            print("  kept \(summary.kept.count - 5) more weight(s) unquantized for the same kind of reason (--json lists them)")
        }
    }
}
