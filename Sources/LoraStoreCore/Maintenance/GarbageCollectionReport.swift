/// What a garbage collection removed (or, in a dry run, would remove).
public struct GarbageCollectionReport: Sendable, Hashable, Codable {
    public var dryRun: Bool
    /// Manifests no root reaches (a tag, a pin, a build in use, or anything younger than the grace period;
    /// directly, or through a kept build's recipe or adapter's base).
    public var manifests: [Digest]
    /// Indexed blobs nothing references, and their on-disk bytes.
    public var blobs: [Digest]
    public var blobBytes: Int
    /// Files under `blobs/` the index does not know, and stale files under `tmp/`.
    public var strayFiles: [String]
    public var strayBytes: Int
    /// Items left alone because they are younger than the grace period.
    public var keptForGrace: Int
    /// Untagged builds left alone because another process was pulling or serving them.
    public var keptInUse: Int

    /// Bytes freed (or that would be).
    public var freedBytes: Int { blobBytes + strayBytes }
}
