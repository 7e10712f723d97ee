import Foundation
import GRDB

extension Store {
    /// Checks that the store is what its index says: every indexed blob exists with its recorded size (with
    /// `deep`, decodes and re-hashes to its digest), every manifest references indexed blobs, and no file
    /// lies outside the index. With `repair`, blobs that only builds hold are dropped with those builds'
    /// materialization (the next pull rebuilds them) and stray files are removed; damaged base or adapter
    /// blobs are reported as unrepairable, their damaged files removed (a push of the same files restores
    /// them).
    ///
    /// This is the store's integrity check: other reads check sizes and the structure of encoded blobs, not
    /// digests (hashing every tensor on every merge and pull would cost about as much as the merge or pull
    /// itself), so run `verify --deep` on a schedule to find bytes damaged on disk.
    public func verify(deep: Bool = false, repair: Bool = false) throws -> VerifyReport {
        try withMaintenanceLock(repair ? .exclusive : .shared) {
            if let damage = try indexDamage() {
                return VerifyReport(blobsChecked: 0, deep: deep, faults: [damage])
            }
            // Files are listed before the index is read: a writer links a blob's file before it commits the
            // blob's row, so a file listed now and committed meanwhile is found in the index below.
            let files = try blobs.allFiles()
            let temporary = try temporaryFiles()
            let (rows, dangling) = try index.database.read { db in
                (
                    try Row.fetchAll(db, sql: "SELECT digest, logical_size, stored_size, codec FROM blob ORDER BY digest"),
                    try Row.fetchAll(
                        db,
                        sql: """
                            SELECT manifest_digest AS owner, blob_digest FROM manifest_blob WHERE blob_digest NOT IN (SELECT digest FROM blob)
                            UNION ALL SELECT build_digest, blob_digest FROM build_blob WHERE blob_digest NOT IN (SELECT digest FROM blob)
                            """)
                )
            }
            var faults: [VerifyReport.Fault] = []
            for row in rows {
                let digest: Digest = row["digest"]
                let path = blobs.path(of: digest)
                guard let size = blobs.storedSize(of: digest) else {
                    faults.append(.init(kind: .missingBlob, digest: digest, path: path, detail: try owners(of: digest), repaired: false))
                    continue
                }
                let expected: Int = row["stored_size"]
                guard size == expected else {
                    faults.append(
                        .init(kind: .wrongSize, digest: digest, path: path,
                              detail: "\(size) bytes on disk, \(expected) in the index; \(try owners(of: digest))", repaired: false))
                    continue
                }
                guard deep else { continue }
                do {
                    _ = try blobs.read(digest, codec: row["codec"], size: row["logical_size"], verify: true)
                } catch {
                    faults.append(.init(kind: .corruptBlob, digest: digest, path: path, detail: "\(error); \(try owners(of: digest))", repaired: false))
                }
            }
            for row in dangling {
                let owner: Digest = row["owner"]
                let blob: Digest = row["blob_digest"]
                faults.append(
                    .init(kind: .danglingReference, digest: blob, path: blobs.path(of: blob),
                          detail: "\(owner.short) references blob \(blob.short), which the index does not have", repaired: false))
            }
            let indexed = Set(rows.map { $0["digest"] as Digest })
            var orphans = files.filter { file in file.digest.map { !indexed.contains($0) } ?? true }
            if !repair, orphans.contains(where: { $0.digest != nil }) {
                // Without the exclusive lock a push may be between linking its files and committing them:
                // a file whose row exists by now is one of those, not an orphan.
                let committed = try index.database.read { db in
                    try indexedBlobs(among: orphans.compactMap(\.digest), in: db)
                }
                orphans.removeAll { $0.digest.map(committed.contains) ?? false }
            }
            for file in orphans {
                faults.append(.init(kind: .orphanFile, digest: file.digest, path: file.path, detail: "not in the index (\(file.size) bytes)", repaired: false))
            }
            // A file whose writer is still running is a write in progress: a push holds the lock until it
            // commits, but a registry spools uploads and materializing for a pull writes its scratch without it.
            for file in temporary where !Self.isWrittenByLiveProcess(file.path) {
                faults.append(.init(kind: .strayTemporaryFile, digest: nil, path: file.path, detail: "left by an interrupted write (\(file.size) bytes)", repaired: false))
            }
            if repair {
                faults = try self.repair(faults)
            }
            return VerifyReport(blobsChecked: rows.count, deep: deep, faults: faults)
        }
    }

    /// SQLite's own check of the index file, `PRAGMA integrity_check`: every page and record well formed,
    /// NOT NULL and other constraints held, its indexes in agreement with its tables (a damaged record can
    /// hide a tag from listings). A file SQLite cannot read at all is damaged as well.
    private func indexDamage() throws -> VerifyReport.Fault? {
        let problems: [String]
        do {
            problems = try index.database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(20)") }
        } catch let error as DatabaseError where StoreIndex.isDamage(error) {
            problems = [error.message ?? "\(error)"]
        }
        guard problems != ["ok"] else { return nil }
        return VerifyReport.Fault(
            kind: .damagedIndex, digest: nil, path: index.path,
            detail: "SQLite finds the index damaged (" + problems.prefix(3).joined(separator: "; ")
                + (problems.count > 3 ? "; ..." : "") + "); the rest of the store was not checked: " + StoreIndex.damageRemedy,
            repaired: false)
    }

    /// Whether the temporary file at `path` belongs to a running process: its name is
    /// `<name>.<process id>.<random>`, as every writer under `tmp/` names its files, or it is the staging
    /// folder of a model folder written there (a registry assembling a download), which
    /// ``ModelFolderWriter`` names as ``StagingFolderName`` says (`.<folder name>.partial-<process id>`
    /// before).
    static func isWrittenByLiveProcess(_ path: String) -> Bool {
        if let staging = path.split(separator: "/").last.flatMap({ StagingFolderName(parsing: String($0)) }) {
            return !staging.isAbandoned
        }
        let parts = path.split(separator: "/").last?.split(separator: ".") ?? []
        let stagingPrefix = "partial-"
        let processID = parts.last.flatMap { $0.hasPrefix(stagingPrefix) ? $0.dropFirst(stagingPrefix.count) : nil }
            ?? (parts.count >= 3 ? parts[parts.count - 2] : nil)
        guard let pid = processID.flatMap({ pid_t($0) }), pid > 0 else { return false }
        return !ProcessLiveness.hasExited(pid)
    }

    /// Names what references a blob, for fault reports.
    private func owners(of digest: Digest) throws -> String {
        try index.database.read { db in
            let manifests = try Digest.fetchAll(db, sql: "SELECT manifest_digest FROM manifest_blob WHERE blob_digest = ?", arguments: [digest])
            let builds = try Digest.fetchAll(db, sql: "SELECT build_digest FROM build_blob WHERE blob_digest = ?", arguments: [digest])
            let names = try (manifests + builds).map { try tags(of: $0, in: db).first ?? $0.short }
            return names.isEmpty ? "referenced by nothing" : "used by " + names.joined(separator: ", ")
        }
    }

    /// Fixes what can be fixed: a bad blob only builds hold is dropped with those builds' materialization
    /// (rows first, in a durable transaction, then the file); stray files are removed; the damaged file of
    /// a base's or adapter's blob is removed so that pushing the same files again restores it. The caller
    /// holds the maintenance lock exclusively.
    private func repair(_ faults: [VerifyReport.Fault]) throws -> [VerifyReport.Fault] {
        try faults.map { fault in
            var fault = fault
            switch fault.kind {
            case .orphanFile, .strayTemporaryFile:
                do {
                    try FileManager.default.removeItem(atPath: fault.path)
                } catch CocoaError.fileNoSuchFile {
                    // Gone already: what repair was to do.
                }
                fault.repaired = true
            case .damagedIndex:
                // Repair rewrites index rows; on a damaged index it would make things worse.
                break
            case .missingBlob, .wrongSize, .corruptBlob, .danglingReference:
                guard let digest = fault.digest else { break }
                let heldByModels = try index.database.read { db in
                    try Bool.fetchOne(
                        db, sql: "SELECT EXISTS (SELECT 1 FROM manifest_blob WHERE blob_digest = ?)", arguments: [digest]) ?? false
                }
                guard !heldByModels else {
                    // Only its source can give a base's or adapter's bytes back. A push of it rewrites a
                    // missing file but trusts one in place, so the damaged file goes; reads then fail as
                    // missing instead of handing out wrong bytes.
                    if fault.kind == .wrongSize || fault.kind == .corruptBlob {
                        try blobs.remove(digest)
                        fault.detail += "; the damaged file was removed: push the same base or adapter again to restore it"
                    }
                    break
                }
                fault.repaired = try index.durableWrite { db in
                    let builds = try Digest.fetchAll(db, sql: "SELECT DISTINCT build_digest FROM build_blob WHERE blob_digest = ?", arguments: [digest])
                    for build in builds {
                        try db.execute(sql: "DELETE FROM build_blob WHERE build_digest = ?", arguments: [build])
                        try db.execute(sql: "UPDATE build SET state = 'recipe' WHERE digest = ?", arguments: [build])
                    }
                    try db.execute(sql: "DELETE FROM blob WHERE digest = ?", arguments: [digest])
                    return true
                }
                if fault.repaired { try blobs.remove(digest) }
            }
            return fault
        }
    }
}
