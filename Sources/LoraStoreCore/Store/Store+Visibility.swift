import Foundation
import GRDB

/// What a reader limited to some repositories (``RepositoryVisibility``) may see of manifests and blobs that
/// are named by digest, which says nothing of the repository they belong to.
///
/// A manifest is visible when a repository the reader may see tags it, or when it is an untagged build (the
/// build of an ad-hoc recipe) whose base and adapters are all visible that way: its bytes follow from inputs
/// the reader may pull anyway. A blob is visible when a visible manifest references it (a base's or adapter's
/// tensors and files, a materialized build's tensors). Whatever is not visible is answered as missing, the
/// same as what the store lacks, so that digests of other namespaces cannot be probed.
extension Store {
    /// The manifest a reference points at, if `visibility` lets the reader see it; else
    /// ``StoreError/notFound(_:)``, as for a manifest the store lacks. A reference naming a repository must
    /// name a visible one; a bare digest must name a visible manifest.
    public func resolve(_ reference: Reference, visibleTo visibility: RepositoryVisibility) throws -> StoredManifest {
        try index.database.read { db in try resolve(reference, visibleTo: visibility, in: db) }
    }

    /// The logical size and codec of an indexed blob, or nil when the store lacks it or `visibility` hides
    /// it (no visible manifest references it).
    ///
    /// A reader limited to some repositories costs one indexed query: the manifests and builds holding the
    /// blob, with their tags (through `manifest_blob_by_blob`, `build_blob_by_blob` and `tag_by_manifest`),
    /// read until one of a visible repository turns up.
    public func blobInfo(
        _ digest: Digest, visibleTo visibility: RepositoryVisibility
    ) throws -> (logicalSize: Int, codec: BlobCodec)? {
        guard !visibility.isAll else { return try blobInfo(digest) }
        return try index.database.read { db in
            guard try isVisible(blob: digest, to: visibility, in: db) else { return nil }
            return try Row.fetchOne(
                db.cachedStatement(sql: "SELECT logical_size, codec FROM blob WHERE digest = ?"), arguments: [digest]
            ).map { ($0["logical_size"], $0["codec"]) }
        }
    }

    /// ``resolve(_:visibleTo:)`` inside a database access.
    func resolve(_ reference: Reference, visibleTo visibility: RepositoryVisibility, in db: Database) throws -> StoredManifest {
        guard !visibility.isAll else { return try resolve(reference, in: db) }
        if let repository = reference.repository {
            guard visibility.allows(repository) else { throw StoreError.notFound(reference.description) }
            return try resolve(reference, in: db)
        }
        let stored = try resolve(reference, in: db)
        guard try isVisible(manifest: stored.digest, to: visibility, in: db) else {
            throw StoreError.notFound(reference.description)
        }
        return stored
    }

    /// Whether the manifest `digest` is visible: tagged in a visible repository, or an untagged build of
    /// visible inputs.
    func isVisible(manifest digest: Digest, to visibility: RepositoryVisibility, in db: Database) throws -> Bool {
        guard !visibility.isAll else { return true }
        let repositories = try String.fetchAll(
            db.cachedStatement(sql: "SELECT repository FROM tag WHERE manifest_digest = ?"), arguments: [digest])
        if repositories.contains(where: visibility.allows) { return true }
        return try repositories.isEmpty && isUntaggedBuildVisible(digest, to: visibility, in: db)
    }

    /// Whether the blob `digest` is referenced by a visible manifest.
    func isVisible(blob digest: Digest, to visibility: RepositoryVisibility, in db: Database) throws -> Bool {
        guard !visibility.isAll else { return true }
        let rows = try Row.fetchCursor(db.cachedStatement(sql: Self.blobHoldersQuery), arguments: [digest])
        var untagged: [Digest] = []
        while let row = try rows.next() {
            if let repository: String = row[1] {
                if visibility.allows(repository) { return true }
            } else {
                untagged.append(row[0])
            }
        }
        return try untagged.contains { try isUntaggedBuildVisible($0, to: visibility, in: db) }
    }

    /// Whether `digest` is a build whose base and every adapter a visible repository tags (the caller has
    /// checked that no tag names the build itself).
    func isUntaggedBuildVisible(_ digest: Digest, to visibility: RepositoryVisibility, in db: Database) throws -> Bool {
        let rows = try Row.fetchAll(db.cachedStatement(sql: Self.buildInputsQuery), arguments: [digest])
        var inputs: [Digest: Bool] = [:]
        for row in rows {
            let input: Digest = row[0]
            let repository: String? = row[1]
            inputs[input, default: false] = inputs[input, default: false] || repository.map(visibility.allows) == true
        }
        // No rows: not a build, and an untagged base or adapter belongs to no one.
        return !inputs.isEmpty && inputs.values.allSatisfy { $0 }
    }

    /// The manifests and builds holding the blob `?1`, each with the repository of every tag naming it (NULL
    /// when untagged): `manifest_blob_by_blob`, `build_blob_by_blob` and `tag_by_manifest` answer it
    /// without a scan.
    static let blobHoldersQuery = """
        SELECT holder.digest, tag.repository
        FROM (
            SELECT manifest_digest AS digest FROM manifest_blob WHERE blob_digest = ?1
            UNION SELECT build_digest FROM build_blob WHERE blob_digest = ?1
        ) AS holder
        LEFT JOIN tag ON tag.manifest_digest = holder.digest
        """

    /// The base and adapters of the build `?1`, each with the repository of every tag naming it (NULL when
    /// untagged); no rows when `?1` is not a build.
    static let buildInputsQuery = """
        SELECT input.digest, tag.repository
        FROM (
            SELECT base_digest AS digest FROM build WHERE digest = ?1
            UNION SELECT adapter_digest FROM build_adapter WHERE build_digest = ?1
        ) AS input
        LEFT JOIN tag ON tag.manifest_digest = input.digest
        """
}
