import GRDB

/// Digests are stored as their 64 hex digits.
extension Digest: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { hex.databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> Digest? {
        String.fromDatabaseValue(dbValue).flatMap(Digest.init)
    }
}

extension ManifestKind: DatabaseValueConvertible {}
extension BlobCodec: DatabaseValueConvertible {}
