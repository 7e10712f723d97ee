import Foundation
import GRDB

extension Store {
    /// Storage accounting for the whole store (entries for every base, adapter and build), or, with a
    /// reference, the totals and the entry of that one manifest.
    ///
    /// With a `visibility` short of ``RepositoryVisibility/all`` (a registry reader limited to a namespace),
    /// the store is as that reader sees it: the totals count only the manifests it may see (tagged in its
    /// repositories, or untagged builds of such inputs; see ``resolve(_:visibleTo:)``), as if they were the
    /// whole store, the entries are theirs with only visible tags, the reference must be visible, and
    /// `unreferencedBytes` and `indexBytes`, which belong to no repository, are 0. An entry's
    /// `exclusiveBytes` still says what removing it would free from the store.
    public func stats(for reference: Reference? = nil, visibleTo visibility: RepositoryVisibility = .all) throws -> StorageStats {
        let indexBytes = ["", "-wal", "-shm"].reduce(0) { total, suffix in
            let attributes = try? FileManager.default.attributesOfItem(atPath: index.path + suffix)
            return total + ((attributes?[.size] as? Int) ?? 0)
        }
        return try index.database.read { db in
            let only = try reference.map { try resolve($0, visibleTo: visibility, in: db).digest }
            // What no tag or pin keeps, counted from the entries of the whole store (not for one manifest).
            let kept = only == nil ? try manifests(reachableFrom: [], in: db) : nil
            guard visibility.isAll else {
                let manifests = try visibleManifests(visibleTo: visibility, in: db)
                let totals = try StorageTotals(of: manifests, in: db)
                let entries = try manifests.filter { only == nil || $0.digest == only }.map { manifest in
                    try entry(manifest.digest, kind: manifest.kind, logicalSize: manifest.logicalSize, visibleTo: visibility, in: db)
                }
                return totals.stats(
                    unreferencedBytes: 0, indexBytes: 0,
                    untagged: kept.map { Self.untaggedShare(of: entries, kept: $0) }, entries: entries)
            }
            // Bases and adapters: every manifest as files, then the distinct blobs they reference.
            let modelLogical = try Int.fetchOne(
                db, sql: "SELECT COALESCE(SUM(logical_size), 0) FROM manifest WHERE kind != 'build'") ?? 0
            let modelBlobs = try Row.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(logical_size), 0) AS logical, COALESCE(SUM(stored_size), 0) AS stored FROM blob
                    WHERE digest IN (SELECT blob_digest FROM manifest_blob)
                    """)
            let distinctLogical: Int = modelBlobs?["logical"] ?? 0
            let distinctStored: Int = modelBlobs?["stored"] ?? 0
            // Builds: a full merged model each, against the blobs only builds hold.
            let buildLogical = try Int.fetchOne(
                db, sql: "SELECT COALESCE(SUM(logical_size), 0) FROM manifest WHERE kind = 'build'") ?? 0
            let buildStored = try Int.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(stored_size), 0) FROM blob WHERE digest IN (SELECT blob_digest FROM build_blob)
                        AND digest NOT IN (SELECT blob_digest FROM manifest_blob)
                    """) ?? 0
            let unreferenced = try Int.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(stored_size), 0) FROM blob WHERE digest NOT IN (SELECT blob_digest FROM manifest_blob)
                        AND digest NOT IN (SELECT blob_digest FROM build_blob)
                    """) ?? 0
            let entries = try Row.fetchAll(
                db,
                sql: """
                    SELECT digest, kind, logical_size FROM manifest WHERE ?1 IS NULL OR digest = ?1 ORDER BY kind, digest
                    """,
                arguments: [only]
            ).map { row in
                try entry(row["digest"], kind: row["kind"], logicalSize: row["logical_size"], visibleTo: .all, in: db)
            }
            let totals = StorageTotals(
                modelLogical: modelLogical, distinctLogical: distinctLogical, distinctStored: distinctStored,
                buildLogical: buildLogical, buildStored: buildStored)
            return totals.stats(
                unreferencedBytes: unreferenced, indexBytes: indexBytes,
                untagged: kept.map { Self.untaggedShare(of: entries, kept: $0) }, entries: entries)
        }
    }

    /// How many of `entries` no tag or pin keeps (not in `kept`), and the bytes only each of them holds.
    private static func untaggedShare(of entries: [StorageStats.Entry], kept: Set<Digest>) -> (count: Int, exclusiveBytes: Int) {
        let untagged = entries.filter { !kept.contains($0.digest) }
        return (untagged.count, untagged.reduce(0) { $0 + $1.exclusiveBytes })
    }

    /// The storage entry of one manifest, with the tags of the repositories `visibility` allows.
    private func entry(
        _ digest: Digest, kind: ManifestKind, logicalSize: Int, visibleTo visibility: RepositoryVisibility, in db: Database
    ) throws -> StorageStats.Entry {
        let table = kind == .build ? "build_blob" : "manifest_blob"
        let owner = kind == .build ? "build_digest" : "manifest_digest"
        let storedBytes = try Int.fetchOne(
            db,
            sql: """
                SELECT COALESCE(SUM(stored_size), 0) FROM blob
                WHERE digest IN (SELECT blob_digest FROM \(table) WHERE \(owner) = ?1)
                    AND (?2 = 0 OR digest NOT IN (SELECT blob_digest FROM manifest_blob))
                """,
            arguments: [digest, kind == .build]) ?? 0
        let exclusive = try Int.fetchOne(
            db,
            sql: """
                SELECT COALESCE(SUM(stored_size), 0) FROM blob
                WHERE digest IN (SELECT blob_digest FROM \(table) WHERE \(owner) = ?1)
                    AND NOT EXISTS (SELECT 1 FROM manifest_blob WHERE blob_digest = blob.digest AND manifest_digest != ?1)
                    AND NOT EXISTS (SELECT 1 FROM build_blob WHERE blob_digest = blob.digest AND build_digest != ?1)
                """,
            arguments: [digest]) ?? 0
        return StorageStats.Entry(
            digest: digest, kind: kind, tags: try tags(of: digest, visibleTo: visibility, in: db), logicalBytes: logicalSize,
            storedBytes: storedBytes, exclusiveBytes: exclusive)
    }

    /// The manifests a reader limited by `visibility` may see, with kind and logical size, in the order of
    /// the whole store's entries (kind, then digest).
    private func visibleManifests(
        visibleTo visibility: RepositoryVisibility, in db: Database
    ) throws -> [(digest: Digest, kind: ManifestKind, logicalSize: Int)] {
        var found: [Digest: (kind: ManifestKind, logicalSize: Int)] = [:]
        let tagged = try Row.fetchCursor(
            db,
            sql: """
                SELECT tag.repository, manifest.digest, manifest.kind, manifest.logical_size
                FROM tag JOIN manifest INDEXED BY manifest_summary ON manifest.digest = tag.manifest_digest
                """)
        while let row = try tagged.next() {
            let repository: String = row[0]
            if visibility.allows(repository) { found[row[1]] = (row[2], row[3]) }
        }
        let untaggedBuilds = try Row.fetchAll(
            db,
            sql: """
                SELECT manifest.digest, manifest.kind, manifest.logical_size
                FROM build JOIN manifest INDEXED BY manifest_summary ON manifest.digest = build.digest
                WHERE NOT EXISTS (SELECT 1 FROM tag WHERE tag.manifest_digest = build.digest)
                """)
        for row in untaggedBuilds where try isUntaggedBuildVisible(row[0], to: visibility, in: db) {
            found[row[0]] = (row[1], row[2])
        }
        return found.map { (digest: $0.key, kind: $0.value.kind, logicalSize: $0.value.logicalSize) }
            .sorted { ($0.kind.rawValue, $0.digest.hex) < ($1.kind.rawValue, $1.digest.hex) }
    }
}
