/// A blob that is missing, damaged or does not hash to its name.
public enum BlobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The blob file does not exist.
    case missing(Digest)
    /// The blob's logical bytes hash to another digest.
    case digestMismatch(expected: Digest, actual: Digest)
    /// The blob file's size or encoding is not what the index says.
    case damaged(Digest, reason: String)

    public var description: String {
        switch self {
        case .missing(let digest):
            "blob \(digest) is missing from the store"
        case .digestMismatch(let expected, let actual):
            "blob \(expected) is corrupt: its bytes hash to \(actual)"
        case .damaged(let digest, let reason):
            "blob \(digest) is damaged: \(reason)"
        }
    }
}
