/// Options of a merge.
public struct MergeOptions: Sendable, Hashable, Codable {
    /// The output type of floating-point tensors (F32, F16 or BF16); nil keeps each base tensor's type,
    /// so untouched tensors pass through bit-identical.
    public var outputType: DType?
    public var combine: CombineMode
    /// Split safetensors output into shards no larger than this (bytes of tensor data); nil writes one
    /// `model.safetensors`.
    public var maxShardSize: Int?
    /// On a quantized base: what to do with its quantized weights (required there, refused elsewhere).
    /// Absent from the JSON when nil, so recipes without it keep their digests.
    public var quantizedBase: QuantizedBuildPolicy?
    /// The largest share of the adapters a build may lose (``BuildReport/adapterLoss``: how far its output
    /// is from the exact merge, `‖W_out − W_exact‖ / ‖Δ‖` of its fidelity report's total) before its
    /// materialization fails; nil means 0.1 for a requantized output and no limit otherwise. Absent from the
    /// JSON when nil.
    public var maxAdapterLoss: Double?

    public init(
        outputType: DType? = nil, combine: CombineMode = .exact, maxShardSize: Int? = nil,
        quantizedBase: QuantizedBuildPolicy? = nil, maxAdapterLoss: Double? = nil
    ) {
        self.outputType = outputType
        self.combine = combine
        self.maxShardSize = maxShardSize
        self.quantizedBase = quantizedBase
        self.maxAdapterLoss = maxAdapterLoss
    }

    /// The default ``maxAdapterLoss`` of a requantized output.
    public static let defaultQuantizedAdapterLoss = 0.1

    /// The loss limit a build applies: ``maxAdapterLoss``, else the default for requantized outputs.
    public var effectiveMaxAdapterLoss: Double? {
        maxAdapterLoss ?? (quantizedBase == .requantize ? Self.defaultQuantizedAdapterLoss : nil)
    }
}
