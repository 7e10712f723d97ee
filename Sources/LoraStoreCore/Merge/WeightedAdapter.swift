/// An adapter to merge and its weight (1 = as trained; 0 = not at all; negative subtracts it).
public struct WeightedAdapter: Sendable, Hashable, Codable {
    public var digest: Digest
    public var weight: Double

    /// A weight of -0 is stored as 0: both merge nothing, and a recipe's digest must not tell them apart.
    public init(digest: Digest, weight: Double = 1) {
        self.digest = digest
        self.weight = weight == 0 ? 0 : weight
    }
}
