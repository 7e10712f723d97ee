/// Why an encoded blob could not be decoded.
///
/// Apart from ``zlibUnavailable(_:)``, every case describes damaged or hostile input that the decoder detected
/// before touching memory out of bounds; ``description`` is a sentence meant for people.
public enum BlobCodecError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bytes do not start with the encoding's magic number.
    case notAnEncoding
    /// The encoding declares a format version this build does not read.
    case unsupportedVersion(UInt8)
    /// The encoding ends before the structure it declares; the message says where.
    case truncated(String)
    /// The encoding's header, tables or compressed data are inconsistent; the message says what.
    case corrupt(String)
    /// zlib could not run, typically for lack of memory; the input may be fine.
    case zlibUnavailable(String)
    /// The output buffer does not have the decoded size the encoding declares.
    case outputSizeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .notAnEncoding:
            "The blob is not in the encoding its codec names (magic number missing)."
        case .unsupportedVersion(let version):
            "The blob uses format version \(version) of its codec, which this version of lorastore cannot read."
        case .truncated(let message):
            "The encoded blob is truncated: \(message)."
        case .corrupt(let message):
            "The encoded blob is corrupt: \(message)."
        case .zlibUnavailable(let message):
            "The blob could not be decoded: \(message)."
        case .outputSizeMismatch(let expected, let actual):
            "The output buffer holds \(actual) bytes but the blob decodes to \(expected) bytes."
        }
    }
}
