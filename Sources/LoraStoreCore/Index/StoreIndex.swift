import Foundation
import GRDB

/// The SQLite index of a store (`index.sqlite` under the root), in WAL mode so that readers never block the
/// writer and several processes can share one store.
///
/// The schema comes from the SQL files in `migrations/`, embedded into the binary at build time and applied in
/// order, each exactly once, recorded in `grdb_migrations`. Opening a store made by an older lorastore
/// upgrades it in place; opening one made by a newer lorastore is refused rather than misread.
public final class StoreIndex: Sendable {
    /// The database, shared by the threads of this process.
    public let database: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (creating if needed) and migrates the index at `path`, up to `target` (a migration identifier)
    /// or, by default, to the latest schema.
    ///
    /// - Parameter busyTimeout: how long a write waits for another connection's write transaction before it
    ///   fails with SQLite's busy error (``isBusy(_:)``).
    public init(path: String, migratingUpTo target: String? = nil, busyTimeout: Duration = .seconds(30)) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.inSeconds)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Listings and lineage read a few thousand pages of a large index in random order: through a
            // mapping they cost a memory access each instead of a read call, with no copy per connection.
            try db.execute(sql: "PRAGMA mmap_size = \(Self.mappedBytes)")
        }
        do {
            database = try Self.withExclusiveLock(path + ".lock") {
                let pool = try DatabasePool(path: path, configuration: configuration)
                let migrator = Self.migrator
                let (superseded, applied) = try pool.read { db in
                    (try migrator.hasBeenSuperseded(db), Set(try migrator.appliedIdentifiers(db)))
                }
                if superseded { throw StoreError.newerSchema(path: path) }
                let wanted = Self.migrationIdentifiers.prefix { $0 != target } + (target.map { [$0] } ?? [])
                // Only a store that needs it is written to: on a full disk, reads and removals still open it.
                if !wanted.allSatisfy(applied.contains) {
                    if let target {
                        try migrator.migrate(pool, upTo: target)
                    } else {
                        try migrator.migrate(pool)
                    }
                }
                return pool
            }
        } catch let error as DatabaseError where Self.isDamage(error) {
            throw StoreError.damagedIndex(path: path, reason: "SQLite: " + (error.message ?? "\(error)"))
        }
    }

    /// Whether `error` is SQLite's busy answer: another connection held the write lock for longer than the
    /// busy timeout (another process writing for that long), or a read transaction could not become a
    /// write one because another connection wrote first. A passing state, worth retrying, not a fault of
    /// the store.
    public static func isBusy(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_BUSY
    }

    /// What to do about a damaged index, for messages.
    static let damageRemedy = "copy the whole store aside before anything writes to it, then restore index.sqlite from a "
        + "backup, or rebuild it with sqlite3's `.recover`; the blobs are not affected"

    /// Whether `error` is SQLite finding the database file damaged or not a database at all.
    public static func isDamage(_ error: any Error) -> Bool {
        let code = (error as? DatabaseError)?.resultCode
        return code == .SQLITE_CORRUPT || code == .SQLITE_NOTADB
    }

    /// Whether `error` is SQLite failing to write because the disk (or a quota) is full.
    public static func isFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// Runs `updates` in one transaction that is on disk when this returns. The index otherwise syncs its
    /// write-ahead log only at checkpoints (`synchronous = NORMAL`: a power cut may lose the last commits,
    /// never corrupt the index), which is fine for additions; a removal whose files are deleted afterwards
    /// must not be lost once they are, or its rows would point at nothing.
    public func durableWrite<T>(_ updates: (Database) throws -> T) throws -> T {
        try database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
            try db.beginTransaction(.immediate)
            do {
                let result = try updates(db)
                try db.commit()
                return result
            } catch {
                try? db.rollback()
                throw error
            }
        }
    }

    /// How much of the database file SQLite maps into memory (address space, not memory: pages load on use).
    static let mappedBytes = 1 << 30

    /// The migrations known to this build, in order.
    public static var migrationIdentifiers: [String] { embeddedMigrations.map(\.identifier) }

    /// The identifiers of the migrations applied to this index.
    public func appliedMigrations() throws -> [String] {
        try database.read { try Self.migrator.appliedMigrations($0) }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for (identifier, sql) in embeddedMigrations {
            migrator.registerMigration(identifier) { db in
                try db.execute(sql: sql)
            }
        }
        return migrator
    }

    /// Runs `body` holding an exclusive lock on `lockPath`, so that two processes opening a new store at
    /// once do not both try to create its schema.
    private static func withExclusiveLock<T>(_ lockPath: String, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: lockPath)
        try lock.lock(.exclusive)
        defer { lock.unlock() }
        return try body()
    }
}
