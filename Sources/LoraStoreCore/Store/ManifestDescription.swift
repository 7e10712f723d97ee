import Foundation

/// Everything `show` prints about a manifest.
public struct ManifestDescription: Sendable, Hashable, Codable {
    public var digest: Digest
    public var kind: ManifestKind
    /// Tags pointing at this manifest, as `NAME:TAG`.
    public var tags: [String]
    public var createdAt: Date
    /// Tensors with their storage.
    public var tensors: [Tensor]
    public var files: [FileEntry]
    /// Plain-file bytes of all tensors and files; for a build, of its merged tensors.
    public var logicalSize: Int
    /// On-disk bytes of this manifest's distinct blobs (shared blobs counted in full).
    public var storedSize: Int
    /// For an adapter: its metadata.
    public var adapter: AdapterRecord?
    /// For an adapter or a build: tags of its base.
    public var baseTags: [String]
    /// For a build: its recipe (base, adapters with weights, options).
    public var recipe: BuildRecipe?
    /// For a quantized base: its quantized weights, by name.
    public var quantization: [String: QuantizedWeight]?

    /// A tensor and how it is stored.
    public struct Tensor: Sendable, Hashable, Codable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var digest: Digest
        public var size: Int
        public var storedSize: Int
        public var codec: BlobCodec
        public var file: String
    }
}
