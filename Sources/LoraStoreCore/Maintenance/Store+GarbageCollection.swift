import Foundation
import GRDB

extension Store {
    /// Removes what nothing keeps: manifests no root reaches (with their recipes' records), blobs no manifest
    /// or build references, and files the index does not know, when older than `grace` seconds.
    ///
    /// Roots are the tags, pinned builds, builds being pulled or served (their lock is held), and manifests
    /// younger than the grace period (a build's age counts from its last pull). A root keeps what it is made
    /// of: a build its base and adapters, an adapter its base. Safe while other processes push and pull: the
    /// sweep holds the maintenance lock exclusively (writers of new blobs hold it shared until they commit)
    /// and the lock of every build it removes. The index rows go first, in one durable transaction; files
    /// are deleted only once it has committed, still under the locks, so a failure at any point never leaves
    /// a row pointing at a deleted file: at worst a file outlives its row, and the next collection removes it.
    ///
    /// - Throws: ``StoreError/incompleteCollection(removed:failures:)`` when the index was swept but some
    ///   files could not be deleted.
    public func collectGarbage(grace: TimeInterval = 3600, dryRun: Bool = false) throws -> GarbageCollectionReport {
        try withMaintenanceLock(.exclusive) {
            var report = GarbageCollectionReport(
                dryRun: dryRun, manifests: [], blobs: [], blobBytes: 0, strayFiles: [], strayBytes: 0, keptForGrace: 0,
                keptInUse: 0)
            var removedBuildLocks: [FileLock] = []
            defer { removedBuildLocks.forEach { $0.unlock() } }
            try index.durableWrite { db in
                // A dry run makes the same index changes in a savepoint it rolls back.
                try db.inSavepoint {
                    try sweep(
                        db, cutoff: Date().timeIntervalSince1970 - grace, into: &report, holding: &removedBuildLocks)
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

    /// Deletes the manifests no root reaches and the unreferenced blobs' rows older than `cutoff`, and lists
    /// them and the stray files (unindexed blob files, leftovers under `tmp/`) in `report`. Deletes no file.
    /// Takes the exclusive lock of every build it deletes and appends it to `held`.
    private func sweep(
        _ db: Database, cutoff: TimeInterval, into report: inout GarbageCollectionReport, holding held: inout [FileLock]
    ) throws {
        let reachable = try manifests(reachableFrom: keptRoots(db, cutoff: cutoff, into: &report, holding: &held), in: db)
        // Builds first, then adapters, then bases: later rows may reference earlier ones.
        for kind in [ManifestKind.build, .adapter, .base] {
            let digests = try Digest.fetchAll(
                db, sql: "SELECT digest FROM manifest WHERE kind = ? ORDER BY digest", arguments: [kind])
            for digest in digests where !reachable.contains(digest) {
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
        }
        report.strayBytes = Self.bytesFreed(removing: report.strayFiles, besides: removed.map(blobs.path(of:)))
    }

    /// The bytes removing the files at `paths` frees, when the files at `others` go too and are counted
    /// apart. A blob linked into place by a write that was then interrupted is also still in `tmp/` under
    /// its staged name: a file's bytes count once, and only when every name it has goes.
    /// A folder (a crashed merge's staging folder in `tmp/`) counts as the files in it.
    static func bytesFreed(removing paths: [String], besides others: [String]) -> Int {
        var files: [[UInt64]: (links: Int, removed: Int, size: Int, countedApart: Bool)] = [:]
        for (path, apart) in filesWithin(paths).map({ ($0, false) }) + others.map({ ($0, true) }) {
            var status = stat()
            guard lstat(path, &status) == 0 else { continue }
            let key = [UInt64(truncatingIfNeeded: status.st_dev), UInt64(truncatingIfNeeded: status.st_ino)]
            var file = files[key] ?? (Int(status.st_nlink), 0, Int(status.st_size), false)
            file.removed += 1
            file.countedApart = file.countedApart || apart
            files[key] = file
        }
        return files.values.reduce(0) { total, file in
            total + (file.removed >= file.links && !file.countedApart ? file.size : 0)
        }
    }

    /// `paths`, each folder among them replaced by the files below it.
    private static func filesWithin(_ paths: [String]) -> [String] {
        paths.flatMap { path -> [String] in
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else { return [path] }
            let below = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
            return below.map { path + "/" + $0 }.filter { child in
                var isChildFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: child, isDirectory: &isChildFolder) && !isChildFolder.boolValue
            }
        }
    }

    /// The manifests that tags and pins do not reach but that are kept anyway: those younger than `cutoff`
    /// (a build's age counts from its last pull) and builds whose lock another process holds (a pull or a
    /// server reading them). Every other such build's lock is taken exclusively and appended to `held`.
    private func keptRoots(
        _ db: Database, cutoff: TimeInterval, into report: inout GarbageCollectionReport, holding held: inout [FileLock]
    ) throws -> [Digest] {
        let reachable = try manifests(reachableFrom: [], in: db)
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT manifest.digest, manifest.kind, MAX(manifest.created_at, COALESCE(build.last_pulled_at, 0)) AS used_at
                FROM manifest LEFT JOIN build ON build.digest = manifest.digest ORDER BY manifest.digest
                """)
        var kept: [Digest] = []
        for row in rows {
            let digest: Digest = row["digest"]
            guard !reachable.contains(digest) else { continue }
            if (row["used_at"] as Double) >= cutoff {
                report.keptForGrace += 1
                kept.append(digest)
            } else if (row["kind"] as ManifestKind) == .build {
                let lock = try buildLock(digest)
                if try lock.tryLock(.exclusive) {
                    held.append(lock)
                } else {
                    report.keptInUse += 1
                    kept.append(digest)
                }
            }
        }
        return kept
    }

    /// Manifests reachable from the roots: tags, pinned builds and `extraRoots`, with the bases of adapters
    /// and builds among them, and the adapters (and their bases) of builds among them.
    func manifests(reachableFrom extraRoots: [Digest], in db: Database) throws -> Set<Digest> {
        let extra = String(decoding: try JSONEncoder().encode(extraRoots.map(\.hex)), as: UTF8.self)
        return try Set(
            Digest.fetchAll(
                db,
                sql: """
                    WITH roots(digest) AS (
                        SELECT manifest_digest FROM tag
                        UNION SELECT digest FROM build WHERE pinned = 1
                        UNION SELECT value FROM json_each(?))
                    SELECT digest FROM roots
                    UNION SELECT base_digest FROM manifest WHERE digest IN roots AND base_digest IS NOT NULL
                    UNION SELECT adapter_digest FROM build_adapter WHERE build_digest IN roots
                    UNION SELECT base_digest FROM adapter WHERE manifest_digest IN
                        (SELECT adapter_digest FROM build_adapter WHERE build_digest IN roots)
                    """,
                arguments: [extra]))
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
