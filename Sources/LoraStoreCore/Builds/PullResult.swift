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

extension PullResult {
    /// Writes every key, the report of a pull that merged nothing as null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(digest, forKey: .digest)
        try container.encode(kind, forKey: .kind)
        try container.encode(destination, forKey: .destination)
        try container.encode(files, forKey: .files)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(merged, forKey: .merged)
        try container.encode(rebuilt, forKey: .rebuilt)
        try container.encode(evicted, forKey: .evicted)
        try container.encode(report, forKey: .report)
    }
}
