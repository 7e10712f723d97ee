/// Options of a merge.
public struct MergeOptions: Sendable, Hashable, Codable {
    /// The output type of floating-point tensors (F32, F16 or BF16); nil keeps each base tensor's type,
    /// so untouched tensors pass through bit-identical.
    public var outputType: DType?
    public var combine: CombineMode
    /// Split safetensors output into shards no larger than this (bytes of tensor data); nil writes one
    /// `model.safetensors`.
    public var maxShardSize: Int?

    public init(outputType: DType? = nil, combine: CombineMode = .exact, maxShardSize: Int? = nil) {
        self.outputType = outputType
        self.combine = combine
        self.maxShardSize = maxShardSize
    }
}
