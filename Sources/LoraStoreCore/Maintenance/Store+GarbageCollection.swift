import Foundation
import GRDB

extension Store {
    /// Removes what no tag reaches: untagged manifests (with their recipes' records), blobs no manifest or
    /// build references, and files the index does not know, when older than `grace` seconds.
    ///
    /// Roots are the tags. A tagged build keeps its base and adapters; a tagged adapter keeps its base. Safe
    /// while other processes push and pull: the sweep holds the maintenance lock exclusively (writers of new
    /// blobs hold it shared until they commit). The index rows go first, in one transaction; files are
    /// deleted only once it has committed, still under the lock, so a failure at any point never leaves a
    /// row pointing at a deleted file: at worst a file outlives its row, and the next collection removes it.
    ///
    /// - Throws: ``StoreError/incompleteCollection(removed:failures:)`` when the index was swept but some
    ///   files could not be deleted.
    public func collectGarbage(grace: TimeInterval = 3600, dryRun: Bool = false) throws -> GarbageCollectionReport {
        try withMaintenanceLock(.exclusive) {
            var report = GarbageCollectionReport(
                dryRun: dryRun, manifests: [], blobs: [], blobBytes: 0, strayFiles: [], strayBytes: 0, keptForGrace: 0)
            try index.database.write { db in
                // A dry run makes the same index changes in a savepoint it rolls back.
                try db.inSavepoint {
                    try sweep(db, cutoff: Date().timeIntervalSince1970 - grace, into: &report)
                    return dryRun ? .rollback : .commit
                }
            }
            guard !dryRun else { return report }
            var failures: [String] = []
            for digest in report.blobs {
                do { try blobs.remove(digest) } catch { failures.append("\(error)") }
            }
            for path in report.strayFiles {
                do { try FileManager.default.removeItem(atPath: path) } catch { failures.append("\(path): \(error)") }
            }
            guard failures.isEmpty else { throw StoreError.incompleteCollection(removed: report, failures: failures) }
            return report
        }
    }

    /// Deletes the unreachable manifests and unreferenced blobs' rows older than `cutoff`, and lists them and
    /// the stray files (unindexed blob files, leftovers under `tmp/`) in `report`. Deletes no file.
    private func sweep(_ db: Database, cutoff: TimeInterval, into report: inout GarbageCollectionReport) throws {
        let reachable = try reachableManifests(in: db)
        // Builds first, then adapters, then bases: later rows may reference earlier ones.
        for kind in [ManifestKind.build, .adapter, .base] {
            let rows = try Row.fetchAll(
                db, sql: "SELECT digest, created_at FROM manifest WHERE kind = ? ORDER BY digest", arguments: [kind])
            for row in rows where !reachable.contains(row["digest"]) {
                guard (row["created_at"] as Double) < cutoff else {
                    report.keptForGrace += 1
                    continue
                }
                let digest: Digest = row["digest"]
                report.manifests.append(digest)
                try db.execute(sql: "DELETE FROM manifest WHERE digest = ?", arguments: [digest])
            }
        }
        for row in try Row.fetchAll(db, sql: "SELECT digest, stored_size, created_at FROM blob ORDER BY digest") {
            let digest: Digest = row["digest"]
            guard try !isReferenced(digest, in: db) else { continue }
            guard (row["created_at"] as Double) < cutoff else {
                report.keptForGrace += 1
                continue
            }
            report.blobs.append(digest)
            report.blobBytes += row["stored_size"] as Int
            try db.execute(sql: "DELETE FROM blob WHERE digest = ?", arguments: [digest])
        }
        let indexed = try Set(Digest.fetchAll(db, sql: "SELECT digest FROM blob"))
        let removed = Set(report.blobs)
        let strays = try blobs.allFiles().filter { file in
            guard let digest = file.digest else { return true }
            return !indexed.contains(digest) && !removed.contains(digest)
        }.map { (path: $0.path, size: $0.size, modified: $0.modified) } + temporaryFiles()
        for file in strays {
            guard file.modified.timeIntervalSince1970 < cutoff else {
                report.keptForGrace += 1
                continue
            }
            report.strayFiles.append(file.path)
            report.strayBytes += file.size
        }
    }

    /// Manifests reachable from tags: tagged ones, the bases of tagged adapters and builds, and the adapters
    /// of tagged builds.
    func reachableManifests(in db: Database) throws -> Set<Digest> {
        try Set(
            Digest.fetchAll(
                db,
                sql: """
                    WITH tagged(digest) AS (SELECT DISTINCT manifest_digest FROM tag)
                    SELECT digest FROM tagged
                    UNION SELECT base_digest FROM manifest WHERE digest IN tagged AND base_digest IS NOT NULL
                    UNION SELECT adapter_digest FROM build_adapter WHERE build_digest IN tagged
                    UNION SELECT base_digest FROM adapter WHERE manifest_digest IN
                        (SELECT adapter_digest FROM build_adapter WHERE build_digest IN tagged)
                    """))
    }

    /// Files under `tmp/` with their sizes and modification times.
    func temporaryFiles() throws -> [(path: String, size: Int, modified: Date)] {
        let folder = blobs.temporaryDirectory.path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return names.sorted().compactMap { name in
            let path = folder + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            return (path, (attributes[.size] as? Int) ?? 0, (attributes[.modificationDate] as? Date) ?? .distantPast)
        }
    }
}
