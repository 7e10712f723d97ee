import Foundation
import GRDB

extension Store {
    /// The manifest a reference points at.
    public func resolve(_ reference: Reference) throws -> StoredManifest {
        try index.database.read { db in try resolve(reference, in: db) }
    }

    /// The manifest a reference points at, read inside a database access.
    func resolve(_ reference: Reference, in db: Database) throws -> StoredManifest {
        let digest: Digest
        switch reference.selector {
        case .tag(let tag):
            guard let repository = reference.repository,
                let found = try Digest.fetchOne(
                    db.cachedStatement(sql: "SELECT manifest_digest FROM tag WHERE repository = ? AND name = ?"),
                    arguments: [repository, tag])
            else { throw StoreError.notFound(reference.description) }
            digest = found
        case .digest(let found):
            if let repository = reference.repository {
                let tagged = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM tag WHERE repository = ? AND manifest_digest = ?)",
                    arguments: [repository, found]) ?? false
                guard tagged else { throw StoreError.notFound(reference.description) }
            }
            digest = found
        }
        guard let stored = try manifest(digest, in: db) else { throw StoreError.notFound(reference.description) }
        return stored
    }

    /// The manifest a reference points at, which must be of `kind` (and visible, see ``resolve(_:visibleTo:)``).
    func resolve(
        _ reference: Reference, as kind: ManifestKind, visibleTo visibility: RepositoryVisibility = .all, in db: Database
    ) throws -> StoredManifest {
        let stored = try resolve(reference, visibleTo: visibility, in: db)
        guard stored.kind == kind else {
            throw StoreError.wrongKind(reference: reference.description, expected: kind, found: stored.kind)
        }
        return stored
    }

    /// The manifest with `digest`, which must exist (a recipe's base or adapter, a digest from the index).
    func existingManifest(_ digest: Digest, in db: Database) throws -> StoredManifest {
        guard let stored = try manifest(digest, in: db) else { throw StoreError.notFound(digest.description) }
        return stored
    }

    /// The manifest with `digest`, or nil.
    func manifest(_ digest: Digest, in db: Database) throws -> StoredManifest? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT kind, content, created_at FROM manifest WHERE digest = ?"), arguments: [digest])
        else { return nil }
        let content: Data = row["content"]
        return StoredManifest(
            digest: digest, kind: row["kind"], manifest: try Manifest(json: content),
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    /// The codec of each indexed blob among `digests`.
    func codecs(of digests: some Collection<Digest>, in db: Database) throws -> [Digest: BlobCodec] {
        var codecs: [Digest: BlobCodec] = [:]
        for digest in digests {
            if let codec = try BlobCodec.fetchOne(
                db.cachedStatement(sql: "SELECT codec FROM blob WHERE digest = ?"), arguments: [digest])
            {
                codecs[digest] = codec
            }
        }
        return codecs
    }
}
