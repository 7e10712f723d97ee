/// The logical bytes of a blob: memory-mapped for raw blobs, decoded into memory for compressed ones.
///
/// Keep the value alive while using ``bytes``.
public final class BlobContents: @unchecked Sendable {
    /// The blob's logical bytes.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: MappedFile?
    private let allocation: UnsafeMutableRawBufferPointer?

    init(mapping: MappedFile) {
        self.mapping = mapping
        self.allocation = nil
        self.bytes = mapping.bytes
    }

    init(decoded allocation: UnsafeMutableRawBufferPointer) {
        self.mapping = nil
        self.allocation = allocation
        self.bytes = UnsafeRawBufferPointer(allocation)
    }

    deinit {
        allocation?.deallocate()
    }
}
