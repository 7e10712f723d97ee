/// A name for a manifest, as in container registries: `NAME[:TAG]` (the tag defaults to `latest`),
/// `NAME@sha256:<hex>`, or a bare `sha256:<hex>`.
///
/// Names are lower-case path segments (`acme/support-bot`): each segment is letters and digits, optionally
/// separated by single `.`, `_` or `-`, so a name is always a safe relative path and never `..`. Tags are
/// up to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`. A tag moves; a
/// digest never changes.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    /// The repository name, absent for a bare digest.
    public let repository: String?
    /// What the reference points at within the repository.
    public let selector: Selector

    /// A tag or a digest.
    public enum Selector: Hashable, Sendable {
        case tag(String)
        case digest(Digest)
    }

    /// The tag used when a reference names none.
    public static let defaultTag = "latest"

    /// Parses a reference, explaining what is wrong with a malformed one.
    public init(parsing text: String) throws(ReferenceError) {
        if text.hasPrefix("sha256:") {
            // A mistyped digest would otherwise read as tag `<hex>` of a repository named `sha256`.
            guard let digest = Digest(text) else {
                throw ReferenceError(text, "a digest is written sha256: followed by 64 hex digits")
            }
            self.repository = nil
            self.selector = .digest(digest)
            return
        }
        if let at = text.firstIndex(of: "@") {
            let name = String(text[..<at])
            let digestText = text[text.index(after: at)...]
            try Self.validate(name: name, in: text)
            guard digestText.hasPrefix("sha256:"), let digest = Digest(digestText) else {
                throw ReferenceError(text, "a digest is written sha256: followed by 64 hex digits")
            }
            self.repository = name
            self.selector = .digest(digest)
            return
        }
        let name: String
        let tag: String
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            name = String(text[..<colon])
            tag = String(text[text.index(after: colon)...])
        } else {
            name = text
            tag = Self.defaultTag
        }
        try Self.validate(name: name, in: text)
        try Self.validate(tag: tag, in: text)
        self.repository = name
        self.selector = .tag(tag)
    }

    /// A reference to `repository` at `tag`; both must be valid.
    public init(repository: String, tag: String = Reference.defaultTag) throws(ReferenceError) {
        try Self.validate(name: repository, in: repository + ":" + tag)
        try Self.validate(tag: tag, in: repository + ":" + tag)
        self.repository = repository
        self.selector = .tag(tag)
    }

    /// A reference by digest alone.
    public init(digest: Digest) {
        self.repository = nil
        self.selector = .digest(digest)
    }

    /// The tag, when the reference names one.
    public var tag: String? {
        if case .tag(let tag) = selector { tag } else { nil }
    }

    /// The digest, when the reference names one.
    public var digest: Digest? {
        if case .digest(let digest) = selector { digest } else { nil }
    }

    public var description: String {
        switch selector {
        case .tag(let tag): "\(repository ?? ""):\(tag)"
        case .digest(let digest): repository.map { "\($0)@\(digest)" } ?? digest.description
        }
    }

    /// Checks a repository name.
    public static func validate(name: String, in text: String) throws(ReferenceError) {
        guard !name.isEmpty else { throw ReferenceError(text, "the name is empty") }
        guard name.utf8.count <= 255 else { throw ReferenceError(text, "the name is longer than 255 characters") }
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty else {
                throw ReferenceError(text, "the name has an empty path segment (leading, trailing or double '/')")
            }
            guard isValidSegment(segment) else {
                throw ReferenceError(
                    text,
                    "name segment \"\(segment)\" must be lower-case letters and digits, separated by single '.', '_' or '-'"
                )
            }
        }
    }

    /// Checks a tag.
    public static func validate(tag: String, in text: String) throws(ReferenceError) {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first else { throw ReferenceError(text, "the tag is empty") }
        guard bytes.count <= 128 else { throw ReferenceError(text, "the tag is longer than 128 characters") }
        guard first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            throw ReferenceError(text, "a tag cannot start with '.' or '-'")
        }
        guard bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
            throw ReferenceError(text, "tag \"\(tag)\" may hold only letters, digits, '_', '.' and '-'")
        }
    }

    private static func isValidSegment(_ segment: Substring) -> Bool {
        var previousWasSeparator = true
        for byte in segment.utf8 {
            if (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) {
                previousWasSeparator = false
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") {
                if previousWasSeparator { return false }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) || (0x30...0x39).contains(byte)
    }
}
