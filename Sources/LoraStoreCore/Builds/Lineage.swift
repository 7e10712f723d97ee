/// Where a manifest comes from and what was made from it: for a build, its base and weighted adapters; for
/// an adapter, its base and every build using it; for a base, the adapters pushed against it and every build
/// on it.
public struct Lineage: Sendable, Hashable, Codable {
    /// A related manifest.
    public struct Node: Sendable, Hashable, Codable {
        public var digest: Digest
        public var kind: ManifestKind
        public var tags: [String]
        /// For a build's adapters: the weight.
        public var weight: Double?
    }

    public var subject: Node
    /// The base (of a build or adapter).
    public var base: Node?
    /// A build's adapters, in merge order.
    public var adapters: [Node]
    /// Adapters pushed against a base.
    public var derivedAdapters: [Node]
    /// Builds made from a base or adapter.
    public var derivedBuilds: [Node]
}

extension Lineage {
    /// Writes every key, a base-less subject's `base` as null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subject, forKey: .subject)
        try container.encode(base, forKey: .base)
        try container.encode(adapters, forKey: .adapters)
        try container.encode(derivedAdapters, forKey: .derivedAdapters)
        try container.encode(derivedBuilds, forKey: .derivedBuilds)
    }
}

extension Lineage.Node {
    /// Writes every key, the weight of anything but a build's adapter as null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(digest, forKey: .digest)
        try container.encode(kind, forKey: .kind)
        try container.encode(tags, forKey: .tags)
        try container.encode(weight, forKey: .weight)
    }
}
