/// The build cache: its budget, what it holds, and each build's state.
public struct CacheStatus: Sendable, Hashable, Codable {
    /// The byte budget for materialized build tensors; nil means unlimited.
    public var budget: Int?
    /// On-disk bytes of all materialized build tensors (blobs shared with a base or adapter not counted).
    public var usage: Int
    public var builds: [BuildCacheEntry]
}
