import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

@Suite("Index schema migrations")
struct MigrationTests {
    @Test func appliesEveryMigrationOnceInOrder() throws {
        try TemporaryDirectory.with { directory in
            let store = try Store(root: directory)
            #expect(try store.index.appliedMigrations() == StoreIndex.migrationIdentifiers)
            #expect(StoreIndex.migrationIdentifiers.first == "0001_initial")
            #expect(StoreIndex.migrationIdentifiers == StoreIndex.migrationIdentifiers.sorted())
            try store.index.database.write { db in
                try db.execute(sql: "INSERT INTO setting (key, value) VALUES ('kept', 'yes')")
            }
            let reopened = try Store(root: directory)
            #expect(try reopened.index.appliedMigrations() == StoreIndex.migrationIdentifiers, "reopening applies nothing again")
            let kept = try reopened.index.database.read { db in
                try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = 'kept'")
            }
            #expect(kept == "yes", "reopening keeps the rows written before")
        }
    }

    @Test func upgradesAStoreMadeByAnOlderVersionInPlace() throws {
        try TemporaryDirectory.with { directory in
            let path = directory.appending(path: "index.sqlite").path
            let old = try StoreIndex(path: path, migratingUpTo: "0001_initial")
            #expect(try old.appliedMigrations() == ["0001_initial"])
            let hadBuilds = try old.database.write { db in
                try db.execute(sql: "INSERT INTO setting (key, value) VALUES ('kept', 'yes')")
                return try db.tableExists("build")
            }
            #expect(!hadBuilds)
            let store = try Store(root: directory)
            #expect(try store.index.appliedMigrations() == StoreIndex.migrationIdentifiers)
            let (hasBuilds, kept) = try store.index.database.read { db in
                (try db.tableExists("build"), try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = 'kept'"))
            }
            #expect(hasBuilds && kept == "yes")
        }
    }

    @Test func refusesAStoreFromANewerVersion() throws {
        try TemporaryDirectory.with { directory in
            let store = try Store(root: directory)
            try store.index.database.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_from_the_future')")
            }
            let path = directory.appending(path: "index.sqlite").path
            #expect(throws: StoreError.newerSchema(path: path)) { try Store(root: directory) }
        }
    }
}
