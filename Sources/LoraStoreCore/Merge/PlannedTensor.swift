/// One output tensor of a merge and how it is made from the base and the adapters.
public struct PlannedTensor: Sendable {
    /// Name, output type and shape (the base's name and shape).
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// The base tensor it starts from.
    public let base: TensorEntry
    let action: Action

    /// Whether the adapters change this tensor (false: the base's bytes, possibly converted to `dtype`).
    public var isChanged: Bool {
        if case .passThrough = action { false } else { true }
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
        case replace(adapter: Int, key: String, weight: Double)
        /// LoRA biases added to the base bias: b + Σ coefficient·bias.
        case addBias([(adapter: Int, key: String, coefficient: Double)])
    }

    /// One adapter's contribution to a low-rank update.
    struct Term: Sendable {
        let adapter: Int
        let module: AdapterModule
        /// weight × scale, for the `exact` combination.
        let coefficient: Double
    }

    /// The DoRA magnitude to rescale with.
    struct DoRA: Sendable {
        let adapter: Int
        let magnitudeKey: String
        let transposed: Bool
    }
}
