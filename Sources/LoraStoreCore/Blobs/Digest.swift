import Crypto

/// A SHA-256 content address: of a tensor's raw little-endian bytes, a file's bytes, or a manifest's
/// canonical JSON.
///
/// Written `sha256:<64 lowercase hex digits>` in manifests, references and output; the bare hex names the
/// blob file on disk.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 64 lowercase hexadecimal digits.
    public let hex: String

    /// Accepts 64 hex digits, with or without the `sha256:` prefix; upper-case digits are normalised.
    public init?(_ text: some StringProtocol) {
        let digits = text.hasPrefix("sha256:") ? Substring(text.dropFirst(7)) : Substring(text)
        guard digits.utf8.count == 64, digits.utf8.allSatisfy({ $0.isHexDigit }) else { return nil }
        hex = digits.lowercased()
    }

    /// The digest of `bytes`.
    public init(of bytes: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        self.init(hasher.finalize())
    }

    /// The digest of `bytes`.
    public init(of bytes: some Sequence<UInt8>) {
        self.init(SHA256.hash(data: Array(bytes)))
    }

    init(_ digest: SHA256.Digest) {
        hex = digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    /// `sha256:<hex>`.
    public var description: String { "sha256:" + hex }

    /// The first 12 hex digits, for tables meant for people.
    public var short: String { String(hex.prefix(12)) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }
}

extension Digest: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(text)\" is not a sha256 digest")
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x61...0x66).contains(self) || (0x41...0x46).contains(self)
    }
}
