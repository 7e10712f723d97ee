import ArgumentParser
import LoraStoreCore

/// The merge options a recipe records: output dtype, combination mode, shard size.
struct MergeOptionGroup: ParsableArguments {
    @Option(help: "Output dtype of floating-point tensors: F32, F16 or BF16 (default: each base tensor's).")
    var dtype: String?

    @Option(help: "exact (the weighted sum of deltas) or peft-linear (PEFT's linear combination).")
    var combine: String = CombineMode.exact.rawValue

    @Option(help: "Split the output into shards of at most this size (e.g. 5GB).")
    var maxShardSize: ByteSize?

    func options() throws -> MergeOptions {
        let dtype = try dtype.map { text in
            guard let dtype = DType(rawValue: text.uppercased()), dtype.isMergeable else {
                throw CommandError("dtype \(text): choose F32, F16 or BF16")
            }
            return dtype
        }
        guard let mode = CombineMode(rawValue: combine) else {
            throw CommandError("combine \(combine): choose exact or peft-linear")
        }
        return MergeOptions(outputType: dtype, combine: mode, maxShardSize: maxShardSize?.bytes)
    }
}
