/// A small file kept verbatim with a model or adapter (`config.json`, tokenizer files, `adapter_config.json`,
/// a shard index), stored as a blob.
public struct FileEntry: Sendable, Hashable, Codable {
    /// The path relative to the model folder.
    public var path: String
    public var digest: Digest
    public var size: Int

    public init(path: String, digest: Digest, size: Int) {
        self.path = path
        self.digest = digest
        self.size = size
    }
}
