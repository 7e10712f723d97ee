/// How a blob should be written when it is new: as its raw bytes, or compressed.
///
/// Chosen per tensor kind and dtype by the store's ``CodecPolicy``. Compression is attempted and kept only when
/// it gains; the blob's digest is the same either way.
public enum BlobEncoding: Sendable, Hashable {
    /// Store the bytes as they are, so they can be memory-mapped and read at disk speed.
    case raw
    /// Try byte-grouped zlib (``ByteGroupedCodec``) with elements of `elementWidth` bytes.
    case compressed(elementWidth: Int)
    /// Try ``ExponentCodec``, for floating-point weights of this layout.
    case floatingPoint(FloatLayout)
}
