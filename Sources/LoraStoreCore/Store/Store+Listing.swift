import Foundation
import GRDB

extension Store {
    /// Every tag, optionally of one kind, sorted by repository and tag.
    public func list(kind: ManifestKind? = nil) throws -> [ListEntry] {
        try index.database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT tag.repository, tag.name, tag.manifest_digest, tag.updated_at, manifest.kind,
                           manifest.logical_size, adapter.rank, manifest.base_digest
                    FROM tag
                    JOIN manifest ON manifest.digest = tag.manifest_digest
                    LEFT JOIN adapter ON adapter.manifest_digest = tag.manifest_digest
                    WHERE ?1 IS NULL OR manifest.kind = ?1
                    ORDER BY tag.repository, tag.name
                    """,
                arguments: [kind])
            return rows.map { row in
                ListEntry(
                    repository: row["repository"], tag: row["name"], kind: row["kind"], digest: row["manifest_digest"],
                    logicalSize: row["logical_size"], updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
                    rank: row["rank"], base: row["base_digest"])
            }
        }
    }

    /// Describes the manifest `reference` points at: tensors with their storage, files, tags and metadata.
    public func describe(_ reference: Reference) throws -> ManifestDescription {
        try index.database.read { db in
            let stored = try resolve(reference, in: db)
            var storage: [Digest: (size: Int, codec: BlobCodec)] = [:]
            for digest in stored.manifest.blobDigests {
                if let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT stored_size, codec FROM blob WHERE digest = ?"), arguments: [digest])
                {
                    storage[digest] = (row["stored_size"], row["codec"])
                }
            }
            let tensors = stored.manifest.tensors.map { entry in
                ManifestDescription.Tensor(
                    name: entry.name, dtype: entry.dtype, shape: entry.shape, digest: entry.digest, size: entry.size,
                    storedSize: storage[entry.digest]?.size ?? 0, codec: storage[entry.digest]?.codec ?? .raw,
                    file: entry.file)
            }
            return ManifestDescription(
                digest: stored.digest, kind: stored.kind, tags: try tags(of: stored.digest, in: db),
                createdAt: stored.createdAt, tensors: tensors, files: stored.manifest.files,
                logicalSize: stored.manifest.logicalSize, storedSize: storage.values.reduce(0) { $0 + $1.size },
                adapter: try AdapterRecord.fetch(db, manifest: stored.digest),
                baseTags: try stored.manifest.base.map { try tags(of: $0, in: db) } ?? [])
        }
    }

    /// The tags pointing at a manifest, as `NAME:TAG`.
    func tags(of digest: Digest, in db: Database) throws -> [String] {
        try String.fetchAll(
            db.cachedStatement(sql: "SELECT repository || ':' || name FROM tag WHERE manifest_digest = ? ORDER BY 1"),
            arguments: [digest])
    }
}
