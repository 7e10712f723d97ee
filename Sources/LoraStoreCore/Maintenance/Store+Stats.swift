import Foundation
import GRDB

extension Store {
    /// Storage accounting for the whole store (entries for every base, adapter and build), or, with a
    /// reference, the totals and the entry of that one manifest.
    public func stats(for reference: Reference? = nil) throws -> StorageStats {
        let indexBytes = ["", "-wal", "-shm"].reduce(0) { total, suffix in
            let attributes = try? FileManager.default.attributesOfItem(atPath: index.path + suffix)
            return total + ((attributes?[.size] as? Int) ?? 0)
        }
        return try index.database.read { db in
            let only = try reference.map { try resolve($0, in: db).digest }
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
            let logical = modelLogical + buildLogical
            let stored = distinctStored + buildStored
            let entries = try Row.fetchAll(
                db,
                sql: """
                    SELECT digest, kind, logical_size FROM manifest WHERE ?1 IS NULL OR digest = ?1 ORDER BY kind, digest
                    """,
                arguments: [only]
            ).map { row in
                let digest: Digest = row["digest"]
                let kind: ManifestKind = row["kind"]
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
                    digest: digest, kind: kind, tags: try tags(of: digest, in: db), logicalBytes: row["logical_size"],
                    storedBytes: storedBytes, exclusiveBytes: exclusive)
            }
            return StorageStats(
                logicalBytes: logical, storedBytes: stored, dedupSavedBytes: modelLogical - distinctLogical,
                compressionSavedBytes: distinctLogical - distinctStored, buildSavedBytes: buildLogical - buildStored,
                fullCopiesBytes: logical, savingsRatio: stored > 0 ? Double(logical) / Double(stored) : 0,
                unreferencedBytes: unreferenced, indexBytes: indexBytes, entries: entries)
        }
    }
}
