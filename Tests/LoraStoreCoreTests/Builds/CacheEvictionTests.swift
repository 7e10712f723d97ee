import Foundation
import GRDB
import Testing
@testable import LoraStoreCore

/// Eviction against what happens around it: pins landing late, writers in other processes, downloads.
@Suite("Cache eviction")
struct CacheEvictionTests {
    private func build(_ test: TestStore, _ name: String, weight: Double) throws -> Digest {
        let digest = try test.store.createBuild(
            base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), weight)],
            tag: try Reference(parsing: name))
        try test.store.pull(name, to: test.directory.appending(path: name.replacingOccurrences(of: "/", with: "-")))
        return digest
    }

    /// Files of the build's blobs that no base or adapter holds.
    private func cacheFiles(_ test: TestStore, of build: Digest) throws -> [String] {
        try test.store.index.database.read { db in
            try Digest.fetchAll(
                db,
                sql: """
                    SELECT blob_digest FROM build_blob WHERE build_digest = ?
                        AND blob_digest NOT IN (SELECT blob_digest FROM manifest_blob)
                    """,
                arguments: [build])
        }.map { test.store.blobs.path(of: $0) }
    }

    /// A build chosen for eviction and pinned before the eviction runs stays (enforcement picks from a read
    /// that the pin may follow).
    @Test func aBuildPinnedAfterItWasChosenIsNotEvicted() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let pinned = try build(test, "acme/pinned", weight: 1)
            try test.store.setPinned(Reference(digest: pinned), true)
            #expect(try !test.store.evict(pinned))
            #expect(try test.store.materializedOutput(of: pinned) != nil)
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// Rows go first and files after, only while no writer is between its blob writes and its commit: with
    /// a writer's lock held, eviction leaves the files as strays (never a row without its file), which
    /// garbage collection removes.
    @Test func evictionDeletesFilesOnlyWhenNoWriterIsActive() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let first = try build(test, "acme/one", weight: 1)
            let files = try cacheFiles(test, of: first)
            #expect(!files.isEmpty)
            let writer = try FileLock(path: directory.appending(path: "store/locks/maintenance.lock").path)
            try writer.lock(.shared)
            #expect(try test.store.setCacheBudget(0) == [first])
            #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "a writer is active: the files stay")
            let faults = try test.store.verify().faults
            #expect(faults.count == files.count && faults.allSatisfy { $0.kind == .orphanFile }, "\(faults)")
            writer.unlock()
            #expect(try test.store.collectGarbage(grace: 0).strayFiles.sorted() == files.sorted())

            try test.store.setCacheBudget(nil)
            let second = try build(test, "acme/two", weight: 0.5)
            let secondFiles = try cacheFiles(test, of: second)
            #expect(try test.store.setCacheBudget(0) == [second])
            #expect(secondFiles.allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "no writer: the files go at once")
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A registry serving a build counts as pulling it, so the most downloaded build is not the first evicted.
    @Test func servingABuildMakesItTheMostRecentlyPulled() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let served = try build(test, "acme/served", weight: 1)
            let idle = try build(test, "acme/idle", weight: 0.5)
            let hold = try test.store.holdForServing(served)
            #expect(!hold.merged)
            withExtendedLifetime(hold.hold) {}
            let order = try test.store.cacheStatus().builds.map(\.digest)
            #expect(order.first == served, "most recently pulled first: \(order)")
            let oneBuild = try test.store.cacheStatus().builds.map(\.storedBytes).max() ?? 0
            #expect(try test.store.setCacheBudget(oneBuild) == [idle])
        }
    }
}
