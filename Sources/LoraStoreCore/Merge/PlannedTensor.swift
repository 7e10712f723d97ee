/// One output tensor of a merge and how it is made from the base and the adapters.
public struct PlannedTensor: Sendable {
    /// Name, output type and shape (the base's name and shape).
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// The base tensor it starts from.
    public let base: TensorEntry
    let action: Action
    /// For a weight of a quantized base: how it is stored, to read it as F32.
    var quantized: QuantizedSource? = nil

    /// The F32 fused multiply-adds the merge kernel spends on this tensor: rows × columns × the summed rank
    /// of its low-rank terms (zero when no low-rank update touches it). A cost estimate for progress and
    /// benchmarks, since a rank-r merge is bound by r multiply-adds per weight element. (PEFT's `linear`
    /// combination merges one update of the common rank, so there it overstates the cost.)
    public var multiplyAdds: Int {
        switch action {
        case .lowRank(let terms, _), .requantize(let terms), .dequantize(let terms):
            terms.reduce(0) { $0 + $1.module.rows * $1.module.columns * $1.module.rank }
        default: 0
        }
    }

    /// Whether the adapters change this tensor (false: the base's bytes, possibly converted to `dtype`).
    public var isChanged: Bool {
        switch action {
        case .passThrough, .separate: false
        default: true
        }
    }

    /// Whether the output is the base tensor's own bytes (unchanged, same type): a build stores nothing for
    /// it and a merge in memory can leave it in the base's blob.
    public var reusesBaseBytes: Bool {
        !isChanged && dtype == base.dtype
    }

    /// The byte size of the output.
    public var byteCount: Int {
        dtype.byteCount(elementCount: shape.reduce(1, *)) ?? 0
    }

    enum Action: Sendable {
        /// Copy the base (converted to the output type when it differs).
        case passThrough
        /// The base plus one low-rank update made of these terms; DoRA rescales the result.
        case lowRank([Term], dora: DoRA?)
        /// modules_to_save: W + w·(S − W), exactly S when w = 1.
        case replace(Replacement)
        /// LoRA biases added to the base bias, or to the bias an adapter replaces it with (PEFT's
        /// `bias="all"` saves the trained base bias beside `lora_B.bias`): b + Σ coefficient·bias.
        case addBias([BiasTerm], onto: Replacement?)
        /// A quantized weight plus one low-rank update, quantized again in its scheme (``QuantizedBuildPolicy/requantize``).
        case requantize([Term])
        /// The row scales of the requantized weight named here (its `.scale` companion, written after it).
        case requantizedScales(weight: String)
        /// A quantized weight dequantized to the output type, plus the terms when any touch it.
        case dequantize([Term])
        /// The base as stored, the terms left to the runtime (``QuantizedBuildPolicy/separate``); measured
        /// as applied on the fly.
        case separate([Term])
    }

    /// A quantized base weight and the tensor holding its row scales (`int8-row`).
    struct QuantizedSource: Sendable {
        let weight: QuantizedWeight
        let scales: TensorEntry?
    }

    /// One adapter's contribution to a low-rank update.
    struct Term: Sendable {
        let adapter: Int
        let module: AdapterModule
        /// weight × scale, for the `exact` combination.
        let coefficient: Double
    }

    /// A tensor an adapter carries whole, in place of the base's.
    struct Replacement: Sendable {
        let adapter: Int
        let key: String
        /// The adapter's weight: the result is W + weight·(S − W).
        let weight: Double
    }

    /// One adapter's LoRA bias (`lora_B.bias`).
    struct BiasTerm: Sendable {
        let adapter: Int
        let key: String
        /// weight × scale.
        let coefficient: Double
    }

    /// The DoRA magnitude to rescale with.
    struct DoRA: Sendable {
        let adapter: Int
        let magnitudeKey: String
        let transposed: Bool
    }
}
