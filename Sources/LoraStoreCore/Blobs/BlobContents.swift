/// The logical bytes of a blob: memory-mapped for raw blobs, decoded into memory for compressed ones.
///
/// Keep the value alive while using ``bytes``.
public final class BlobContents: @unchecked Sendable {
    /// The blob's logical bytes.
    public let bytes: UnsafeRawBufferPointer
    /// What holds the bytes: the blob file's mapping, or the buffer it was decoded into.
    private let owner: AnyObject

    init(mapping: MappedFile) {
        self.owner = mapping
        self.bytes = mapping.bytes
    }

    /// The first `count` bytes of `buffer`, which a decoder filled (huge pages for a large blob, see
    /// ``ScratchBuffer``).
    init(decoded buffer: ScratchBuffer, count: Int) {
        self.owner = buffer
        self.bytes = UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<count])
    }
}
