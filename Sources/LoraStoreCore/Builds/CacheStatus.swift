/// The build cache: its budget, what it holds, and each build's state.
public struct CacheStatus: Sendable, Hashable, Codable {
    /// The byte budget for materialized build tensors; nil means unlimited.
    public var budget: Int?
    /// On-disk bytes of all materialized build tensors (blobs shared with a base or adapter not counted).
    public var usage: Int
    public var builds: [BuildCacheEntry]
}

extension CacheStatus {
    /// Writes every key, an unlimited budget as null, so scripts find the same keys in every answer.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(budget, forKey: .budget)
        try container.encode(usage, forKey: .usage)
        try container.encode(builds, forKey: .builds)
    }
}
