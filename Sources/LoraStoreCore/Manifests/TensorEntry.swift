/// One tensor of a manifest: its name, type and shape, and the blob holding its raw little-endian bytes.
public struct TensorEntry: Sendable, Hashable, Codable {
    /// The tensor's name as stored in the safetensors file.
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// The blob with the raw bytes.
    public var digest: Digest
    /// The byte size of the raw bytes.
    public var size: Int
    /// The safetensors file (shard) the tensor belongs to, relative to the model folder.
    public var file: String

    public init(name: String, dtype: DType, shape: [Int], digest: Digest, size: Int, file: String) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.digest = digest
        self.size = size
        self.file = file
    }
}
