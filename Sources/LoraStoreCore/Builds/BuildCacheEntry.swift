import Foundation

/// A build as the cache sees it.
public struct BuildCacheEntry: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable {
        /// Only the recipe is stored: never pulled, or evicted.
        case recipe
        /// Every output tensor is stored.
        case materialized
    }

    public var digest: Digest
    public var tags: [String]
    public var state: State
    public var pinned: Bool
    /// On-disk bytes of the blobs only this build holds (what evicting it frees).
    public var storedBytes: Int
    /// Bytes of the merged model as plain files.
    public var logicalBytes: Int
    public var materializations: Int
    public var lastPulledAt: Date?
    public var materializedAt: Date?
}

extension BuildCacheEntry {
    /// Writes every key, the dates of a build never pulled or materialized as null.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(digest, forKey: .digest)
        try container.encode(tags, forKey: .tags)
        try container.encode(state, forKey: .state)
        try container.encode(pinned, forKey: .pinned)
        try container.encode(storedBytes, forKey: .storedBytes)
        try container.encode(logicalBytes, forKey: .logicalBytes)
        try container.encode(materializations, forKey: .materializations)
        try container.encode(lastPulledAt, forKey: .lastPulledAt)
        try container.encode(materializedAt, forKey: .materializedAt)
    }
}
