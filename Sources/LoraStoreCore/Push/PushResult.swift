/// What a push stored, and what it found already there.
public struct PushResult: Sendable, Hashable, Codable {
    /// The tag the push wrote.
    public var reference: String
    public var digest: Digest
    public var kind: ManifestKind
    /// The digest the tag pointed at before, if any.
    public var previousDigest: Digest?
    public var tensorCount: Int
    public var fileCount: Int
    /// Bytes of tensors and files, as plain files would hold them.
    public var logicalBytes: Int
    /// Blobs this push created, and their logical and on-disk sizes.
    public var newBlobs: Int
    public var newLogicalBytes: Int
    public var newStoredBytes: Int
    /// Logical bytes that were already in the store (deduplicated).
    public var reusedBytes: Int
    /// True when this exact manifest was already stored (a re-push).
    public var manifestExisted: Bool
    /// Files in the folder that were not pushed, with the reason.
    public var skippedFiles: [String]
    /// For a quantized base: what was quantized and what was kept; nil otherwise.
    public var quantization: QuantizationSummary? = nil
}
