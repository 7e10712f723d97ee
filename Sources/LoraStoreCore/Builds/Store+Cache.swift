import Foundation
import GRDB

extension Store {
    private static let budgetKey = "cache_budget"

    /// The byte budget for materialized build tensors (nil: unlimited, the default).
    public func cacheBudget() throws -> Int? {
        try index.database.read { db in try cacheBudget(in: db) }
    }

    /// Sets (or, with nil, removes) the cache budget, then evicts builds until usage fits. Returns the
    /// evicted builds.
    @discardableResult
    public func setCacheBudget(_ bytes: Int?) throws -> [Digest] {
        try index.database.write { db in
            if let bytes {
                try db.execute(
                    sql: "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [Self.budgetKey, String(bytes)])
            } else {
                try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [Self.budgetKey])
            }
        }
        return try enforceCacheBudget()
    }

    /// Pins or unpins a build: pinned builds are never evicted. An unpinned build counts against the budget
    /// again at once: returns the builds evicted to fit it (none when pinning). That eviction is best effort,
    /// as after a pull: the unpin is done either way, and a failed eviction leaves the cache over its budget
    /// until the next pull.
    @discardableResult
    public func setPinned(_ reference: Reference, _ pinned: Bool) throws -> [Digest] {
        try index.database.write { db in
            let build = try resolve(reference, as: .build, in: db)
            try db.execute(sql: "UPDATE build SET pinned = ? WHERE digest = ?", arguments: [pinned, build.digest])
        }
        return pinned ? [] : (try? enforceCacheBudget()) ?? []
    }

    /// Usage, budget and every build's state, most recently pulled first.
    public func cacheStatus() throws -> CacheStatus {
        try index.database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT build.*, manifest.logical_size FROM build JOIN manifest ON manifest.digest = build.digest
                    ORDER BY build.last_pulled_at IS NULL, build.last_pulled_at DESC, build.created_at DESC
                    """)
            let builds = try rows.map { row in
                let digest: Digest = row["digest"]
                let state: String = row["state"]
                let pulled: Double? = row["last_pulled_at"]
                let materialized: Double? = row["materialized_at"]
                return BuildCacheEntry(
                    digest: digest, tags: try tags(of: digest, in: db),
                    state: BuildCacheEntry.State(rawValue: state) ?? .recipe, pinned: row["pinned"],
                    storedBytes: try exclusiveBytes(of: digest, in: db), logicalBytes: row["logical_size"],
                    materializations: row["materializations"],
                    lastPulledAt: pulled.map(Date.init(timeIntervalSince1970:)),
                    materializedAt: materialized.map(Date.init(timeIntervalSince1970:)))
            }
            return CacheStatus(budget: try cacheBudget(in: db), usage: try cacheUsage(in: db), builds: builds)
        }
    }

    /// Evicts whole builds, least recently pulled first, until the cache fits its budget. Pinned builds and
    /// builds being read (their lock is held) are skipped. Returns the evicted builds.
    @discardableResult
    public func enforceCacheBudget() throws -> [Digest] {
        var evicted: [Digest] = []
        var skipped = Set<Digest>()
        while true {
            guard let candidate = try evictionCandidate(skipping: skipped) else { return evicted }
            let lock = try buildLock(candidate)
            guard try lock.tryLock(.exclusive) else {
                skipped.insert(candidate)
                continue
            }
            defer { lock.unlock() }
            if try evict(candidate) {
                evicted.append(candidate)
            } else {
                skipped.insert(candidate)
            }
        }
    }

    /// The least recently pulled build eviction may take while the cache is over its budget, else nil.
    private func evictionCandidate(skipping skipped: Set<Digest>) throws -> Digest? {
        try index.database.read { db in
            guard let budget = try cacheBudget(in: db), try cacheUsage(in: db) > budget else { return nil }
            return try Digest.fetchAll(
                db,
                sql: """
                    SELECT digest FROM build WHERE state = 'materialized' AND pinned = 0
                    ORDER BY last_pulled_at IS NOT NULL, last_pulled_at, materialized_at
                    """
            ).first { !skipped.contains($0) }
        }
    }

    /// Drops a build's materialized tensors (keeping its recipe and recorded digests), unless it is pinned
    /// or not materialized when the transaction runs (a pin may land after the build was chosen). The caller
    /// holds the build's exclusive lock. Returns whether it evicted.
    ///
    /// The rows go first, in a durable transaction; the files of the blobs no longer indexed are deleted
    /// after it (``removeUnindexedFiles(_:)``). A crash at any point leaves at worst a file without a row,
    /// never a row without its file.
    @discardableResult
    func evict(_ build: Digest) throws -> Bool {
        let unindexed: [Digest]? = try index.durableWrite { db in
            let evictable = try Bool.fetchOne(
                db, sql: "SELECT state = 'materialized' AND pinned = 0 FROM build WHERE digest = ?", arguments: [build])
            guard evictable == true else { return nil }
            let held = try Digest.fetchAll(db, sql: "SELECT blob_digest FROM build_blob WHERE build_digest = ?", arguments: [build])
            try db.execute(sql: "DELETE FROM build_blob WHERE build_digest = ?", arguments: [build])
            try db.execute(sql: "UPDATE build SET state = 'recipe' WHERE digest = ?", arguments: [build])
            var unreferenced: [Digest] = []
            for digest in held where try !isReferenced(digest, in: db) {
                try db.execute(sql: "DELETE FROM blob WHERE digest = ?", arguments: [digest])
                unreferenced.append(digest)
            }
            return unreferenced
        }
        guard let unindexed else { return false }
        removeUnindexedFiles(unindexed)
        return true
    }

    /// Deletes the files of blobs whose rows a committed transaction removed, when no writer is between its
    /// first blob write and its commit (the maintenance lock, taken exclusively without waiting): such a
    /// writer may be about to index a file it linked at one of these paths. A digest indexed again meanwhile
    /// keeps its file. When the lock is busy, or a file cannot be deleted, the files stay as strays for
    /// garbage collection; the index never points at them, so nothing reads them.
    func removeUnindexedFiles(_ digests: [Digest]) {
        guard !digests.isEmpty else { return }
        _ = try? withMaintenanceLockIfFree {
            let unindexed = try index.database.read { db in try digests.filter { try !isIndexed($0, in: db) } }
            for digest in unindexed {
                try? blobs.remove(digest)
            }
        }
    }

    /// Whether any manifest or build references a blob.
    func isReferenced(_ digest: Digest, in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db,
            sql: """
                SELECT EXISTS (SELECT 1 FROM manifest_blob WHERE blob_digest = ?1)
                    OR EXISTS (SELECT 1 FROM build_blob WHERE blob_digest = ?1)
                """,
            arguments: [digest]) ?? false
    }

    private func cacheBudget(in db: Database) throws -> Int? {
        try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [Self.budgetKey]).flatMap { Int($0) }
    }

    /// On-disk bytes of blobs held by materialized builds and by no base or adapter.
    private func cacheUsage(in db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql: """
                SELECT COALESCE(SUM(stored_size), 0) FROM blob WHERE digest IN (SELECT blob_digest FROM build_blob)
                    AND digest NOT IN (SELECT blob_digest FROM manifest_blob)
                """) ?? 0
    }

    /// On-disk bytes of the blobs only this build holds.
    private func exclusiveBytes(of build: Digest, in db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql: """
                SELECT COALESCE(SUM(blob.stored_size), 0) FROM build_blob JOIN blob ON blob.digest = build_blob.blob_digest
                WHERE build_blob.build_digest = ?1
                    AND NOT EXISTS (SELECT 1 FROM build_blob other WHERE other.blob_digest = build_blob.blob_digest AND other.build_digest != ?1)
                    AND NOT EXISTS (SELECT 1 FROM manifest_blob WHERE manifest_blob.blob_digest = build_blob.blob_digest)
                """,
            arguments: [build]) ?? 0
    }
}
