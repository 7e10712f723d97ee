/// How a blob's bytes are encoded on disk, as recorded in the store's index.
///
/// The blob's digest is always the SHA-256 of its logical (decoded) bytes, so the codec is a storage detail:
/// two stores holding the same tensor under different codecs agree on its identity, and a blob can be
/// re-encoded without changing any reference to it.
public enum BlobCodec: String, Sendable, Hashable, Codable, CaseIterable {
    /// The logical bytes, stored as they are.
    case raw
    /// Byte planes compressed with deflate; see ``ByteGroupedCodec`` for the format. Still read; new F32, F16 and
    /// BF16 tensors use ``exponentANS``.
    case byteGroupedZlib = "bgzip"
    /// Exponents and top mantissa bits tANS-coded, sign and low mantissa bits stored; see ``ExponentCodec``.
    case exponentANS = "xans"
}
