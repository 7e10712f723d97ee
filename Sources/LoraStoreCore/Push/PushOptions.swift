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

    /// Refuses ``base`` when the files at `path` read as a base model (`kind` is `.base`, as for a folder
    /// without `adapter_config.json`): ignored, it would hide that an adapter folder lacks its config.
    /// - Throws: ``StoreError/invalidInput(path:reason:)``.
    public func checkBase(forPushOf kind: ManifestKind, at path: String) throws {
        guard kind == .base, let base else { return }
        throw StoreError.invalidInput(
            path: path,
            reason: "has no \(PushSource.adapterConfigName), so it would be pushed as a base model, yet it was given a base to be checked against (\(base)); an adapter folder needs its \(PushSource.adapterConfigName), a base takes no base")
    }

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
