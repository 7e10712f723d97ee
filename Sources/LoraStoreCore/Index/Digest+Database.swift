import GRDB

/// Digests are stored as their 64 hex digits.
extension Digest: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { hex.databaseValue }

    /// The index holds digests as this type writes them (lowercase), so those are taken as they are once
    /// checked, which matters when a listing decodes a hundred thousand of them; any other text goes through
    /// the normalising ``init(_:)``.
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> Digest? {
        guard let text = String.fromDatabaseValue(dbValue) else { return nil }
        return Digest(lowercaseHex: text) ?? Digest(text)
    }

    /// `text` if it is exactly 64 lowercase hex digits.
    private init?(lowercaseHex text: String) {
        var text = text
        let valid = text.withUTF8 { bytes in
            bytes.count == 64 && bytes.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        guard valid else { return nil }
        hex = text
    }
}

extension ManifestKind: DatabaseValueConvertible {}
extension BlobCodec: DatabaseValueConvertible {}
