/// What a blob write left on disk.
public struct StoredBlob: Sendable, Hashable {
    /// The blob's content address.
    public let digest: Digest
    /// The size of the logical (decoded) bytes.
    public let logicalSize: Int
    /// The size of the file on disk.
    public let storedSize: Int
    /// The file's codec.
    public let codec: BlobCodec
    /// Whether this call created the file (false when the blob was already there).
    public let created: Bool
}
