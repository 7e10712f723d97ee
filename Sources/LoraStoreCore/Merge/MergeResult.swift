/// What an immediate merge wrote.
public struct MergeResult: Sendable, Hashable, Codable {
    /// The folder written.
    public var destination: String
    public var base: Digest
    public var adapters: [WeightedAdapter]
    /// Output tensors, and how many of them the adapters changed.
    public var tensorCount: Int
    public var changedTensors: Int
    /// Bytes of tensor data written.
    public var tensorBytes: Int
    /// The safetensors files written with their SHA-256.
    public var files: [String: Digest]
}
