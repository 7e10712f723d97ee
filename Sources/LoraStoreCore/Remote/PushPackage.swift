import Foundation

/// A push read and validated without a store, for sending to a registry server: the manifest, its digest,
/// and the bytes of every blob it references.
///
/// The checks and hashing are the ones a local push runs (safetensors structure, shard index, NaN and
/// infinity, and for an adapter every key and shape against its base), so a server receiving the package
/// only has to check what it cannot trust: that uploaded bytes hash to their digests and that the manifest
/// is well formed.
public struct PushPackage: Sendable {
    /// Base or adapter.
    public let kind: ManifestKind
    /// The manifest to record.
    public let manifest: Manifest
    /// The manifest's canonical JSON, as sent.
    public let manifestJSON: Data
    /// The SHA-256 of ``manifestJSON``.
    public let digest: Digest
    /// Files in the folder that are not part of the push, with the reason.
    public let skippedFiles: [String]
    private let blobs: [Digest: PendingBlob]

    /// What `path` holds (base or adapter), detected from the files unless `kind` says; an adapter package
    /// needs its base's manifest.
    public static func kind(of path: URL, requested kind: ManifestKind? = nil) throws -> ManifestKind {
        try PushSource.inspect(path, kind: kind).kind
    }

    /// Reads, validates and hashes the model or adapter at `path`. An adapter is checked against `base`
    /// (its digest and manifest, as the server holds them), laid out by the `model_type` of the base's
    /// `config.json` (``Store/modelType(inConfig:)``) as PEFT lays out a module by its class; `policy`
    /// decides which blobs the server is asked to compress.
    public init(
        path: URL, kind: ManifestKind? = nil, base: (digest: Digest, manifest: Manifest)? = nil,
        baseModelType: String? = nil, policy: CodecPolicy = CodecPolicy(), progress: ProgressHandler? = nil
    ) throws {
        let source = try PushSource.inspect(path, kind: kind)
        let stored = base.map { StoredManifest(digest: $0.digest, kind: .base, manifest: $0.manifest, createdAt: Date()) }
        let prepared = try Store.prepare(
            source, base: stored, baseModelType: baseModelType, policy: policy, progress: progress)
        self.kind = source.kind
        manifest = prepared.manifest
        manifestJSON = try prepared.manifest.canonicalJSON()
        digest = Digest(of: manifestJSON)
        skippedFiles = prepared.skipped
        blobs = prepared.blobs
    }

    /// Every blob the manifest references, in digest order.
    public var blobDigests: [Digest] { blobs.keys.sorted() }

    /// The logical size of a blob of this package (0 for a digest it does not reference).
    public func size(of digest: Digest) -> Int {
        blobs[digest]?.size ?? 0
    }

    /// How the server should store a blob: compressed (with its element width) or raw.
    public func encoding(of digest: Digest) -> BlobEncoding {
        blobs[digest]?.encoding ?? .raw
    }

    /// Calls `body` with the bytes of a blob of this package.
    public func withBytes<T>(of digest: Digest, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard let blob = blobs[digest] else { throw BlobStoreError.missing(digest) }
        return try blob.withBytes(body)
    }
}
