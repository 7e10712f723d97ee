import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Verification and repair")
struct VerifyTests {
    private func flipByte(_ path: String, at offset: Int = 100) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        let byte = try handle.read(upToCount: 1)?.first ?? 0
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [byte ^ 0x5A])
        try handle.close()
    }

    /// The id of a process that has exited (and so is nobody's, until the system reuses it).
    private func exitedProcessID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    /// A registry assembles a download in `tmp/serve-<build>.<pid>.<random>`, staged by `ModelFolderWriter`
    /// as `.serve-<build>.<pid>.<random>.partial-<pid>`: while that process runs, neither is a stray (a
    /// repair used to delete the staging folder under the download); once it has exited, both are.
    @Test func aRunningDownloadsStagingFolderIsNotAStray() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let exited = try exitedProcessID()
            let folder = test.store.blobs.temporaryDirectory
            let live = folder.appending(path: ".serve-abc.\(getpid()).18446744073709551615.partial-\(getpid())")
            let abandoned = folder.appending(path: ".serve-abc.\(exited).18446744073709551615.partial-\(exited)")
            // Named as this version names them: by this machine, and by another one sharing the disk, whose
            // process ids mean nothing here.
            let current = folder.appending(
                path: StagingFolderName(writing: "serve-def.\(getpid()).18446744073709551615", kind: "partial").name)
            let currentAbandoned = folder.appending(
                path: ".serve-ghi.\(exited).1.partial-\(StagingFolderName.thisHost)-\(exited)-3")
            let otherMachine = folder.appending(path: ".serve-jkl.\(exited).1.partial-0badc0de-\(exited)-3")
            for staging in [live, abandoned, current, currentAbandoned, otherMachine] {
                try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            }
            let report = try test.store.verify(repair: true)
            #expect(report.faults.map(\.path).sorted() == [abandoned.path, currentAbandoned.path].sorted())
            for kept in [live, current, otherMachine] {
                #expect(FileManager.default.fileExists(atPath: kept.path), "\(kept.lastPathComponent)")
            }
            #expect(!FileManager.default.fileExists(atPath: abandoned.path))
        }
    }

    @Test func namesEachFault() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            #expect(try test.store.verify(deep: true).faults.isEmpty)
            let tensors = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors
            let corrupted = tensors.first { $0.name == "model.layers.0.mlp.down_proj.weight" }!.digest
            let deleted = tensors.first { $0.name == "lm_head.weight" }!.digest
            try flipByte(test.store.blobs.path(of: corrupted))
            try FileManager.default.removeItem(atPath: test.store.blobs.path(of: deleted))
            let temporary = test.store.blobs.temporaryDirectory.appending(path: "\(deleted.hex).\(try exitedProcessID()).456").path
            try Data([0]).write(to: URL(fileURLWithPath: temporary))

            let shallow = try test.store.verify()
            #expect(shallow.faults.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.missingBlob, .strayTemporaryFile])
            let deep = try test.store.verify(deep: true)
            let byKind = Dictionary(grouping: deep.faults, by: \.kind)
            #expect(byKind[.corruptBlob]?.map(\.digest) == [corrupted])
            #expect(byKind[.corruptBlob]?.first?.detail.contains("micro/base:fp32") == true, "names who uses it")
            #expect(byKind[.missingBlob]?.first?.path == test.store.blobs.path(of: deleted))
            #expect(byKind[.strayTemporaryFile]?.first?.path == temporary)

            let repaired = try test.store.verify(deep: true, repair: true)
            #expect(repaired.unrepairable.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.corruptBlob, .missingBlob], "base blobs cannot be rebuilt")
            #expect(!FileManager.default.fileExists(atPath: temporary))
            #expect(!FileManager.default.fileExists(atPath: test.store.blobs.path(of: corrupted)), "the damaged file is removed")
            #expect(throws: BlobStoreError.self, "so reads fail instead of handing out wrong bytes") {
                try test.store.pull("micro/base:fp32", to: directory.appending(path: "damaged"))
            }

            // Pushing the same files again restores both.
            try test.push("base_fp32", as: "micro/base:again")
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A compressed blob whose file holds another blob's encoding (a file misplaced or overwritten) is
    /// refused from its header, before its output is allocated, naming the blob; the size a manifest records
    /// is what the header must say.
    @Test func anEncodedBlobOfAnotherSizeIsRefusedFromItsHeader() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let tensors = try test.store.describe(try Reference(parsing: "acme/b")).tensors.filter { $0.codec != .raw }
            let small = try #require(tensors.min { $0.size < $1.size })
            let large = try #require(tensors.first { $0.size != small.size })
            try FileManager.default.removeItem(atPath: test.store.blobs.path(of: large.digest))
            try FileManager.default.copyItem(
                atPath: test.store.blobs.path(of: small.digest), toPath: test.store.blobs.path(of: large.digest))

            #expect {
                try test.store.blobs.read(large.digest, codec: large.codec, size: large.size)
            } throws: { error in
                error as? BlobStoreError == .damaged(large.digest, reason: "its header says \(small.size) bytes, expected \(large.size)")
            }
            #expect(throws: BlobStoreError.self) {
                try test.store.merge(
                    base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/b"), 1)],
                    to: directory.appending(path: "merged"))
            }
            #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "merged").path))
        }
    }

    @Test func aWriteInProgressIsNotAFaultButAStrayFileIs() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let digest = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors[0].digest
            let running = test.store.blobs.temporaryDirectory.appending(path: "\(digest.hex).\(getpid()).7").path
            try Data([0]).write(to: URL(fileURLWithPath: running))
            #expect(try test.store.verify().faults.isEmpty, "this process is still writing it")

            let junk = test.store.blobs.blobsDirectory.appending(path: "not-a-prefix-folder").path
            try Data([1, 2]).write(to: URL(fileURLWithPath: junk))
            let report = try test.store.verify()
            #expect(report.faults.map(\.kind) == [.orphanFile])
            #expect(report.faults.first?.path == junk)
            #expect(try test.store.verify(repair: true).faults.map(\.kind) == [.orphanFile], "repair leaves a live writer's file too")
            #expect(!FileManager.default.fileExists(atPath: junk) && FileManager.default.fileExists(atPath: running))
        }
    }

    @Test func repairDropsADamagedBuildTensorAndThePullRebuildsIt() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/merged"))
            try test.store.pull("acme/merged", to: directory.appending(path: "first"))
            let held = try test.store.index.database.read { db in
                try Digest.fetchAll(db, sql: "SELECT blob_digest FROM build_blob WHERE build_digest = ?", arguments: [build])
            }
            try flipByte(test.store.blobs.path(of: held[0]), at: 10)
            let orphan = test.store.blobs.blobsDirectory.appending(path: "ab/not-a-blob").path
            try FileManager.default.createDirectory(atPath: (orphan as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data([1]).write(to: URL(fileURLWithPath: orphan))

            let report = try test.store.verify(deep: true, repair: true)
            #expect(Set(report.faults.map(\.kind)) == [.corruptBlob, .orphanFile])
            #expect(report.unrepairable.isEmpty)
            #expect(try test.store.cacheStatus().builds.first?.state == .recipe)
            let pulled = try test.store.pull("acme/merged", to: directory.appending(path: "second"))
            #expect(pulled.rebuilt)
            #expect(
                try Data(contentsOf: directory.appending(path: "second/model.safetensors"))
                    == Data(contentsOf: directory.appending(path: "first/model.safetensors")))
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A page of the index file overwritten: verify reports the index damaged (naming the file) and checks
    /// nothing else, operations that read the page fail as SQLite fails them, and a file that is no
    /// database at all is refused when the store opens, with what to do.
    @Test func aDamagedIndexIsAFaultNamingTheFile() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            #expect(try test.store.verify(deep: true).faults.isEmpty)
            let (page, pageSize) = try test.store.index.database.writeWithoutTransaction { db in
                try db.checkpoint(.truncate)
                return (
                    try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'tag'") ?? 0,
                    try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0)
            }
            let path = test.store.index.path
            for offset in 0..<64 { try flipByte(path, at: (page - 1) * pageSize + offset) }
            let reopened = try Store(root: test.store.root)
            for deep in [false, true] {
                let report = try reopened.verify(deep: deep)
                #expect(report.faults.map(\.kind) == [.damagedIndex] && report.faults.first?.path == path)
                #expect(report.unrepairable.count == 1)
                #expect(report.faults.first?.detail.contains("restore index.sqlite from a backup") == true)
            }
            do {
                _ = try reopened.list()
                Issue.record("a listing read the damaged page without an error")
            } catch {
                #expect(StoreIndex.isDamage(error), "\(error)")
            }

            // An emptied index with the blobs still there is damage, not a new store whose blobs are all
            // orphans (which gc and verify --repair would delete).
            let emptied = directory.appending(path: "emptied")
            try FileManager.default.copyItem(at: test.store.root, to: emptied)
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: emptied.path + "/index.sqlite" + suffix) }
            try Data().write(to: emptied.appending(path: Store.indexFileName))
            #expect {
                try Store(root: emptied)
            } throws: { error in
                guard case StoreError.damagedIndex(_, let reason) = error else { return false }
                return reason.contains("empty")
            }
            #expect(try !test.store.blobs.allFiles().isEmpty)
            // So is an index deleted (or a restore of blobs/ alone): a push there must not start a new index.
            try FileManager.default.removeItem(at: emptied.appending(path: Store.indexFileName))
            #expect {
                try Store(root: emptied)
            } throws: { error in
                guard case StoreError.damagedIndex(_, let reason) = error else { return false }
                return reason.contains("missing")
            }
            #expect(!FileManager.default.fileExists(atPath: emptied.appending(path: Store.indexFileName).path))

            let notADatabase = directory.appending(path: "other")
            try FileManager.default.createDirectory(at: notADatabase, withIntermediateDirectories: true)
            try Data(repeating: 0x41, count: 8192).write(to: notADatabase.appending(path: Store.indexFileName))
            #expect {
                try Store(root: notADatabase)
            } throws: { error in
                guard case StoreError.damagedIndex(let damaged, _) = error else { return false }
                return damaged.hasSuffix("other/\(Store.indexFileName)") && "\(error)".contains(".recover")
            }
        }
    }
}
