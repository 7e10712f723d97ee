/// What a pull wrote.
public struct PullResult: Sendable, Hashable, Codable {
    public var digest: Digest
    public var kind: ManifestKind
    public var destination: String
    /// The files written with their SHA-256 (the recorded digests for builds).
    public var files: [String: Digest]
    /// Bytes written.
    public var bytes: Int
    /// Whether this pull ran the merge (a build's first pull, or the first after eviction).
    public var merged: Bool
    /// Whether the merge was a rebuild of an evicted build, checked against its recorded digests.
    public var rebuilt: Bool
    /// Builds evicted to stay within the cache budget after this pull.
    public var evicted: [Digest]
    /// For a pull that merged: the build's fidelity report.
    public var report: BuildReport? = nil
}
