import Foundation
import GRDB

extension Store {
    /// Every tag, optionally of one kind, sorted by repository and tag.
    ///
    /// One pass over the tags, joined through the narrow `manifest_summary` and `adapter_rank` indexes (named
    /// because SQLite would otherwise look each manifest up in its wide table), decoded row by row.
    public func list(kind: ManifestKind? = nil) throws -> [ListEntry] {
        try index.database.read { db in
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT tag.repository, tag.name, tag.manifest_digest, tag.updated_at, manifest.kind,
                               manifest.logical_size, adapter.rank, manifest.base_digest
                        FROM tag
                        JOIN manifest INDEXED BY manifest_summary ON manifest.digest = tag.manifest_digest
                        LEFT JOIN adapter INDEXED BY adapter_rank ON adapter.manifest_digest = tag.manifest_digest
                        WHERE ?1 IS NULL OR manifest.kind = ?1
                        ORDER BY tag.repository, tag.name
                        """),
                arguments: [kind])
            var entries: [ListEntry] = []
            while let row = try rows.next() {
                entries.append(
                    ListEntry(
                        repository: row[0], tag: row[1], kind: row[4], digest: row[2], logicalSize: row[5],
                        updatedAt: Date(timeIntervalSince1970: row[3]), rank: row[6], base: row[7]))
            }
            return entries
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
