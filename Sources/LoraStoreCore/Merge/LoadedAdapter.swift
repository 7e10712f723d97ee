import Foundation

/// An adapter ready to merge into one base: its config, its layout checked against that base, and access to
/// its factors as F32.
public struct LoadedAdapter: Sendable {
    public let digest: Digest
    public let weight: Double
    public let config: AdapterConfig
    public let layout: AdapterLayout
    let tensors: [String: TensorEntry]
    let codecs: [Digest: BlobCodec]

    /// Loads `stored` against `base`, whose `config.json` names `baseModelType` (``Store/modelType(of:)``);
    /// errors name the adapter by `tag` (one of its tags) when there is one, else by digest.
    init(
        stored: StoredManifest, tag: String?, weight: Double, base: Manifest, baseModelType: String?, store: Store,
        codecs: [Digest: BlobCodec]
    ) throws {
        guard stored.kind == .adapter else {
            throw StoreError.wrongKind(reference: stored.digest.description, expected: .adapter, found: stored.kind)
        }
        guard let configEntry = stored.manifest.files.first(where: { $0.path == PushSource.adapterConfigName }) else {
            throw StoreError.mergeRefused("adapter \(stored.digest.short) has no \(PushSource.adapterConfigName)")
        }
        let label = tag.map { "adapter \($0) (\(stored.digest.short))" } ?? "adapter \(stored.digest.short)"
        let configBytes = try store.blobs.read(configEntry.digest, codec: codecs[configEntry.digest] ?? .raw)
        config = try AdapterConfig(json: Data(configBytes.bytes), file: "\(label)/\(PushSource.adapterConfigName)")
        layout = try AdapterLayout(
            file: label,
            tensors: stored.manifest.tensors.map { ($0.name, .init(dtype: $0.dtype, shape: $0.shape)) },
            config: config,
            base: base,
            baseModelType: baseModelType)
        digest = stored.digest
        self.weight = weight
        tensors = Dictionary(stored.manifest.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.codecs = codecs
    }

    /// The tensor `key` converted to F32 (adapters are upcast before any arithmetic, as PEFT does).
    func floats(_ key: String, store: Store) throws -> [Float] {
        guard let entry = tensors[key] else { throw StoreError.mergeRefused("adapter \(digest.short) has no tensor \(key)") }
        let contents = try store.blobs.read(entry.digest, codec: codecs[entry.digest] ?? .raw, size: entry.size)
        return try FloatConversion.floats(contents.bytes, dtype: entry.dtype)
    }
}
