/// Options of ``Store/push(_:to:options:)``.
public struct PushOptions: Sendable {
    /// Base or adapter; detected from the files when nil.
    public var kind: ManifestKind?
    /// For an adapter: the base it was trained on. When nil, the base recorded by the repository's latest
    /// push is used.
    public var base: Reference?
    /// Receives progress as work advances.
    public var progress: ProgressHandler?

    public init(kind: ManifestKind? = nil, base: Reference? = nil, progress: ProgressHandler? = nil) {
        self.kind = kind
        self.base = base
        self.progress = progress
    }
}
