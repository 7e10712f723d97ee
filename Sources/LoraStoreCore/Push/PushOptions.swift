/// Options of ``Store/push(_:to:options:)``.
public struct PushOptions: Sendable {
    /// Base or adapter; detected from the files when nil.
    public var kind: ManifestKind?
    /// For an adapter: the base it was trained on. When nil, the base recorded by the repository's latest
    /// push is used.
    public var base: Reference?
    /// Receives progress as work advances.
    public var progress: ProgressHandler?
    /// For a base: store it quantized in this scheme (its projection weights; see ``Store/quantize(_:scheme:to:tensors:progress:)``)
    /// instead of as pushed. Only the quantized weights are stored, not their float originals.
    public var quantize: QuantizationScheme?

    public init(
        kind: ManifestKind? = nil, base: Reference? = nil, progress: ProgressHandler? = nil,
        quantize: QuantizationScheme? = nil
    ) {
        self.kind = kind
        self.base = base
        self.progress = progress
        self.quantize = quantize
    }
}
