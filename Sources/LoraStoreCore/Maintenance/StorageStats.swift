/// Where a store's bytes go, and what lorastore saves against keeping plain files.
///
/// Every figure is exact and says what it counts:
/// - ``logicalBytes``: what the user would hold without lorastore: every base and adapter as its files,
///   plus one full merged model per build.
/// - ``storedBytes``: bytes of the distinct blob files on disk that something references (each counted once).
/// - ``dedupSavedBytes``: bases' and adapters' bytes that are stored once for several manifests.
/// - ``compressionSavedBytes``: logical minus on-disk bytes of the distinct blobs of bases and adapters.
/// - ``buildSavedBytes``: each build's full merged size minus what its materialized tensors cost on disk.
///
/// `logicalBytes − dedupSavedBytes − compressionSavedBytes − buildSavedBytes == storedBytes`.
///
/// For a reader limited to some repositories (``RepositoryVisibility``) the figures are those of the
/// manifests it may see, and the equation holds for them; ``unreferencedBytes`` and ``indexBytes``, which
/// belong to no repository, are 0.
public struct StorageStats: Sendable, Hashable, Codable {
    public var logicalBytes: Int
    public var storedBytes: Int
    public var dedupSavedBytes: Int
    public var compressionSavedBytes: Int
    public var buildSavedBytes: Int
    /// The counterfactual: bases and adapters as files plus one full merged model per build (= logicalBytes).
    public var fullCopiesBytes: Int
    /// logicalBytes / storedBytes.
    public var savingsRatio: Double
    /// Indexed blobs nothing references (garbage collection reclaims them), on disk.
    public var unreferencedBytes: Int
    /// The SQLite index files on disk.
    public var indexBytes: Int
    /// Manifests no tag or pin keeps (untagged adapters and bases, ad-hoc and untagged builds), counted in
    /// the figures above: garbage collection removes them once past its grace period (a build's counted from
    /// its last pull); for a reader limited to some repositories, those it may see. Nil for stats of one
    /// manifest, and from a registry that does not say.
    public var untaggedManifests: Int?
    /// On disk, the blobs only those manifests reference, each counted apart: at least what removing them
    /// frees.
    public var untaggedExclusiveBytes: Int?
    /// Per base, adapter and build.
    public var entries: [Entry]

    /// One base, adapter or build.
    public struct Entry: Sendable, Hashable, Codable {
        public var digest: Digest
        public var kind: ManifestKind
        public var tags: [String]
        /// As plain files (a build: its full merged model).
        public var logicalBytes: Int
        /// On disk: the distinct blobs it references (a build: its materialized tensors), shared ones in full.
        public var storedBytes: Int
        /// On disk: the blobs only it references (what removing it would free).
        public var exclusiveBytes: Int
    }
}
