import Foundation
import GRDB

extension Store {
    /// Every tag, optionally of one kind, sorted by repository and tag; with a `visibility` short of
    /// ``RepositoryVisibility/all``, only the tags of the repositories it allows.
    ///
    /// One pass over the tags, joined through the narrow `manifest_summary` and `adapter_rank` indexes (named
    /// because SQLite would otherwise look each manifest up in its wide table), decoded row by row.
    public func list(kind: ManifestKind? = nil, visibleTo visibility: RepositoryVisibility = .all) throws -> [ListEntry] {
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
                let repository: String = row[0]
                guard visibility.allows(repository) else { continue }
                entries.append(
                    ListEntry(
                        repository: repository, tag: row[1], kind: row[4], digest: row[2], logicalSize: row[5],
                        updatedAt: Date(timeIntervalSince1970: row[3]), rank: row[6], base: row[7]))
            }
            return entries
        }
    }

    /// Describes the manifest `reference` points at: tensors with their storage, files, tags and metadata.
    ///
    /// With a `visibility` short of ``RepositoryVisibility/all``, the reference must be one the reader may see
    /// (``resolve(_:visibleTo:)``) and only the tags of repositories it may see are listed, its own and its
    /// base's.
    public func describe(_ reference: Reference, visibleTo visibility: RepositoryVisibility = .all) throws -> ManifestDescription {
        try index.database.read { db in
            let stored = try resolve(reference, visibleTo: visibility, in: db)
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
            // A build's manifest holds its recipe, not tensors: the index keeps its merged size.
            let logicalSize = stored.kind == .build
                ? try Int.fetchOne(db, sql: "SELECT logical_size FROM manifest WHERE digest = ?", arguments: [stored.digest]) ?? 0
                : stored.manifest.logicalSize
            let base = stored.manifest.recipe?.base ?? stored.manifest.base
            return ManifestDescription(
                digest: stored.digest, kind: stored.kind, tags: try tags(of: stored.digest, visibleTo: visibility, in: db),
                createdAt: stored.createdAt, tensors: tensors, files: stored.manifest.files,
                logicalSize: logicalSize, storedSize: storage.values.reduce(0) { $0 + $1.size },
                adapter: try AdapterRecord.fetch(db, manifest: stored.digest),
                baseTags: try base.map { try tags(of: $0, visibleTo: visibility, in: db) } ?? [],
                recipe: stored.manifest.recipe, quantization: stored.manifest.quantization)
        }
    }

    /// The tags pointing at a manifest, as `NAME:TAG`, of the repositories `visibility` allows.
    func tags(of digest: Digest, visibleTo visibility: RepositoryVisibility = .all, in db: Database) throws -> [String] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT repository, repository || ':' || name FROM tag WHERE manifest_digest = ? ORDER BY 2"),
            arguments: [digest]
        ).compactMap { row in visibility.allows(row[0]) ? row[1] : nil }
    }
}
