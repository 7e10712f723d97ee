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

    /// A populated index from before the exponent codec (0004) keeps every row through the later
    /// migrations, 0005's rebuild of the blob table included, with its references intact.
    @Test func aPopulatedIndexKeepsItsRowsThroughTheBlobTableRebuild() throws {
        try TemporaryDirectory.with { directory in
            let path = directory.appending(path: "index.sqlite").path
            let old = try StoreIndex(path: path, migratingUpTo: "0004_build_report")
            let raw = Digest(of: Array("raw tensor".utf8))
            let zipped = Digest(of: Array("zipped tensor".utf8))
            let base = Manifest(
                kind: .base,
                tensors: [
                    TensorEntry(name: "a.weight", dtype: .f32, shape: [4], digest: raw, size: 16, file: "model.safetensors"),
                    TensorEntry(name: "b.weight", dtype: .f32, shape: [4], digest: zipped, size: 16, file: "model.safetensors"),
                ],
                files: [])
            let json = try base.canonicalJSON()
            let digest = Digest(of: json)
            let build = Digest(of: Array("a build".utf8))
            let tables = ["blob", "manifest", "manifest_blob", "repository", "tag", "build", "build_blob"]
            let before = try old.database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO blob VALUES (?, 16, 16, 'raw', 1), (?, 16, 9, 'bgzip', 2);
                        INSERT INTO manifest (digest, kind, content, logical_size, created_at) VALUES (?, 'base', ?, 32, 3);
                        INSERT INTO manifest_blob VALUES (?, ?), (?, ?);
                        INSERT INTO repository VALUES ('micro/base', 'base', 4);
                        INSERT INTO tag VALUES ('micro/base', 'v1', ?, 5);
                        INSERT INTO manifest (digest, kind, content, logical_size, base_digest, created_at)
                            VALUES (?, 'build', '{}', 32, ?, 6);
                        INSERT INTO build (digest, base_digest, state, created_at) VALUES (?, ?, 'materialized', 6);
                        INSERT INTO build_blob VALUES (?, ?);
                        """,
                    arguments: [raw, zipped, digest, json, digest, raw, digest, zipped, digest, build, digest, build, digest, build, zipped])
                return try tables.map { table in
                    try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2").map(\.description)
                }
            }
            let store = try Store(root: directory)
            #expect(try store.index.appliedMigrations() == StoreIndex.migrationIdentifiers)
            let (after, violations) = try store.index.database.read { db in
                (
                    try tables.map { table in try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2").map(\.description) },
                    try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                )
            }
            #expect(after == before)
            #expect(violations.isEmpty, "\(violations)")
            #expect(try store.list().map { "\($0.repository):\($0.tag)" } == ["micro/base:v1"])
            #expect(try store.resolve(try Reference(parsing: "micro/base:v1")).digest == digest)
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
