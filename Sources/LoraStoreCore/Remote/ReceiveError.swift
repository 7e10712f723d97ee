/// Why a registry server refused what a client sent. Nothing is stored when one of these is thrown.
public enum ReceiveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An uploaded blob's bytes hash to another digest than the one it was sent as.
    case digestMismatch(expected: Digest, actual: Digest)
    /// An upload ended before the size it announced (`expected`), or before its chunked body's end (nil).
    case truncated(digest: Digest, expected: Int?, received: Int)
    /// An upload is larger than it announced, or than the server accepts.
    case tooLarge(digest: Digest, limit: Int)
    /// A manifest is not one this server records, with the reason.
    case invalidManifest(String)
    /// A manifest references blobs the server does not have (upload them first).
    case missingBlobs([Digest])
    /// A file name in a manifest or a request that could reach outside its folder.
    case unsafeName(String)

    public var description: String {
        switch self {
        case .digestMismatch(let expected, let actual):
            "the uploaded bytes hash to \(actual), not \(expected); nothing was stored"
        case .truncated(let digest, let expected?, let received):
            "the upload of \(digest) ended after \(received) of \(expected) bytes; nothing was stored"
        case .truncated(let digest, nil, let received):
            "the upload of \(digest) ended after \(received) bytes, before its body was complete; nothing was stored"
        case .tooLarge(let digest, let limit):
            "the upload of \(digest) is larger than \(limit) bytes; nothing was stored"
        case .invalidManifest(let reason):
            "invalid manifest: \(reason)"
        case .missingBlobs(let digests):
            "the manifest references \(digests.count) blob(s) the server does not have, e.g. \(digests.first?.description ?? ""); upload them first"
        case .unsafeName(let name):
            "\"\(name)\" is not a plain file name (no '/', '\\\\', NUL, leading '.', '.' or '..')"
        }
    }

    /// Whether `name` is a single plain file name that cannot leave its folder: not empty, no `/`, `\`
    /// or NUL, not starting with `.` (which also rules out `.` and `..`), at most 255 bytes.
    public static func isSafeFileName(_ name: some StringProtocol) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 255, first != UInt8(ascii: ".") else { return false }
        return !bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
    }

    /// Whether `path` names a file inside a model folder without leaving it: one to three `/`-separated
    /// components, each a safe file name (a separate build's adapters sit in `adapters/<folder>/`).
    public static func isSafeRelativePath(_ path: some StringProtocol) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        return (1...3).contains(components.count) && components.allSatisfy { isSafeFileName($0) }
    }
}
