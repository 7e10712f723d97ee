import Foundation

/// The description of a base model or adapter (its tensors in file order, its small files, and for an
/// adapter the base it was pushed against), or of a build (its recipe).
///
/// A manifest is content-addressed: its digest is the SHA-256 of its canonical JSON (sorted keys, no
/// insignificant whitespace), so the same content always has the same digest.
public struct Manifest: Sendable, Hashable, Codable {
    /// The version of this document's layout.
    public var schemaVersion: Int
    public var kind: ManifestKind
    /// Tensors in the order they appear in their files.
    public var tensors: [TensorEntry]
    /// Small files kept verbatim.
    public var files: [FileEntry]
    /// For an adapter: the digest of the base manifest it was checked against.
    public var base: Digest?
    /// The `__metadata__` of each safetensors file, by file name (without `format`, which is always `pt`).
    public var fileMetadata: [String: [String: String]]
    /// For a build: how to make it. Its tensors are recorded when it is first materialized.
    public var recipe: BuildRecipe?
    /// For a quantized base: its quantized weights by name (``QuantizedWeight``). Absent from the JSON of a
    /// manifest without quantized weights, so their digests are unchanged.
    public var quantization: [String: QuantizedWeight]?

    public static let currentSchemaVersion = 1

    public init(
        kind: ManifestKind, tensors: [TensorEntry], files: [FileEntry], base: Digest? = nil,
        fileMetadata: [String: [String: String]] = [:], recipe: BuildRecipe? = nil,
        quantization: [String: QuantizedWeight]? = nil
    ) {
        self.schemaVersion = Self.currentSchemaVersion
        self.kind = kind
        self.tensors = tensors
        self.files = files
        self.base = base
        self.fileMetadata = fileMetadata
        self.recipe = recipe
        self.quantization = quantization
    }

    /// The canonical JSON bytes the digest is taken over.
    public func canonicalJSON() throws -> Data {
        try CanonicalJSON.encode(self)
    }

    /// Decodes a manifest stored in the index.
    public init(json: Data) throws {
        self = try JSONDecoder().decode(Manifest.self, from: json)
    }

    /// Bytes of all tensors plus all files: what the model or adapter occupies as plain files.
    public var logicalSize: Int {
        tensors.reduce(0) { $0 + $1.size } + files.reduce(0) { $0 + $1.size }
    }

    /// Every blob the manifest references (tensors and files), without repeats.
    public var blobDigests: Set<Digest> {
        Set(tensors.map(\.digest)).union(files.map(\.digest))
    }

    /// The safetensors file names, in order of first appearance.
    public var tensorFiles: [String] {
        var seen = Set<String>()
        return tensors.map(\.file).filter { seen.insert($0).inserted }
    }

    /// The tensors as a model uses them, in file order: a quantized weight with its logical type and shape
    /// (its `.scale` companion left out), every other tensor as stored. Adapters are checked against these.
    public var logicalTensors: [(name: String, signature: AdapterLayout.Signature)] {
        let quantization = quantization ?? [:]
        let companions = Set(quantization.values.compactMap(\.scaleTensor))
        return tensors.filter { !companions.contains($0.name) }.map { tensor in
            let weight = quantization[tensor.name]
            return (tensor.name, .init(dtype: weight?.dtype ?? tensor.dtype, shape: weight?.shape ?? tensor.shape))
        }
    }
}
