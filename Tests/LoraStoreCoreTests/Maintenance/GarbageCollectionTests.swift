import Foundation
import GRDB
import Synchronization
import Testing
@testable import LoraStoreCore

@Suite("Garbage collection")
struct GarbageCollectionTests {
    private func age(_ path: String, by seconds: TimeInterval) throws {
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-seconds)], ofItemAtPath: path)
    }

    /// A store opened with a maintenance wait (as a registry opens it) gives up on a collection that holds
    /// the lock for longer, with a typed error and nothing written, and goes ahead when the lock comes free
    /// within the wait.
    @Test func aWriterWaitsForACollectionOnlyAsLongAsItsStoreSays() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let impatient = try Store(root: test.store.root, maintenanceWait: .milliseconds(300))
            let adapter = try Reference(parsing: "acme/a")
            func push(into store: Store) throws {
                try store.push(
                    Fixtures.url("adapters/a_r8_qv"), to: adapter,
                    options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            }
            let collection = try FileLock(path: test.store.root.appending(path: "locks/maintenance.lock").path)
            try collection.lock(.exclusive)
            let blobsBefore = try test.store.index.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM blob") }
            let started = ContinuousClock.now
            #expect {
                try push(into: impatient)
            } throws: { error in
                guard case StoreError.maintenanceBusy(let waited) = error else { return false }
                return waited == .milliseconds(300)
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(300) && waited < .seconds(10), "\(waited)")
            #expect(throws: StoreError.self) { try test.store.resolve(adapter) }
            #expect(try test.store.index.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM blob") } == blobsBefore)

            // Freed a moment later, within a wait of ten seconds: the push goes ahead.
            let patient = try Store(root: test.store.root, maintenanceWait: .seconds(10))
            let release = Thread { Thread.sleep(forTimeInterval: 0.2); collection.unlock() }
            release.start()
            try push(into: patient)
            #expect(try test.store.resolve(adapter).manifest.kind == .adapter)
        }
    }

    @Test func removesExactlyTheUnreferencedPastTheGracePeriod() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let b = try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let bBlobs = try test.store.resolve(try Reference(parsing: "acme/b")).manifest.blobDigests
            try test.store.untag(try Reference(parsing: "acme/b"))
            let stray = test.store.blobs.temporaryDirectory.appending(path: "left-behind").path
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: stray))
            try age(stray, by: 7200)

            let young = try test.store.collectGarbage(grace: 3600)
            #expect(young.manifests.isEmpty && young.blobs.isEmpty && young.keptForGrace > 0)
            #expect(young.strayFiles == [stray], "old temporary files go even when everything else is young")

            let before = try test.snapshot()
            let dryRun = try test.store.collectGarbage(grace: 0, dryRun: true)
            #expect(try test.snapshot() == before, "a dry run changes nothing")
            #expect(dryRun.manifests == [b.digest])
            #expect(Set(dryRun.blobs) == bBlobs.subtracting(try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.blobDigests))

            let report = try test.store.collectGarbage(grace: 0)
            #expect(report.manifests == dryRun.manifests && report.blobs == dryRun.blobs)
            #expect(report.blobBytes > 0 && report.freedBytes == report.blobBytes + report.strayBytes)
            for digest in report.blobs { #expect(test.store.blobs.storedSize(of: digest) == nil) }
            #expect(try test.store.verify(deep: true).faults.isEmpty)
            #expect(throws: StoreError.self) { try test.store.resolve(Reference(digest: b.digest)) }
            try test.store.pull("acme/a", to: directory.appending(path: "a"))
            #expect(try test.store.collectGarbage(grace: 0).freedBytes == 0, "nothing left to collect")
        }
    }

    /// An interrupted write can leave one file under two names (linked into `blobs/`, still in `tmp/`); the
    /// bytes freed count it once, and a name of a blob that stays frees nothing.
    @Test func bytesFreedCountEachFileOnce() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let bytes = [UInt8](repeating: 9, count: 5000)
            let orphan = test.store.blobs.path(of: Digest(of: bytes))
            try FileManager.default.createDirectory(
                atPath: (orphan as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: orphan))
            let staged = test.store.blobs.temporaryDirectory.appending(path: "stage-orphan").path
            try FileManager.default.linkItem(atPath: orphan, toPath: staged)
            let kept = try #require(try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.tensors.first)
            let keptName = test.store.blobs.temporaryDirectory.appending(path: "stage-kept").path
            try FileManager.default.linkItem(atPath: test.store.blobs.path(of: kept.digest), toPath: keptName)
            // A crashed merge's staging folder counts as the files in it.
            let folder = test.store.blobs.temporaryDirectory.appending(path: "serve-crashed/model")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(count: 3000).write(to: folder.appending(path: "model.safetensors"))
            let staging = test.store.blobs.temporaryDirectory.appending(path: "serve-crashed").path
            for path in [orphan, staged, keptName, staging] { try age(path, by: 7200) }

            let report = try test.store.collectGarbage(grace: 3600)
            #expect(Set(report.strayFiles) == [orphan, staged, keptName, staging])
            #expect(report.strayBytes == bytes.count + 3000)
            #expect(test.store.blobs.storedSize(of: kept.digest) == kept.size)
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    @Test func aFileThatCannotBeDeletedLeavesNoRowWithoutItsFile() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let baseBlobs = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest.blobDigests
            let unreferenced = try test.store.resolve(Reference(digest: adapter.digest)).manifest.blobDigests
                .subtracting(baseBlobs).sorted()
            try test.store.untag(try Reference(parsing: "acme/b"))
            // The last blob swept cannot be unlinked: a folder stands where its file was.
            let stuck = try #require(unreferenced.last)
            let path = test.store.blobs.path(of: stuck)
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: path + "/inside", withIntermediateDirectories: true)

            #expect(throws: StoreError.self) { try test.store.collectGarbage(grace: 0) }
            for digest in unreferenced.dropLast() { #expect(test.store.blobs.storedSize(of: digest) == nil) }
            let faults = try test.store.verify().faults
            #expect(faults.allSatisfy { $0.kind == .orphanFile && $0.digest == stuck }, "\(faults)")
            #expect(!faults.isEmpty, "the folder is left as a stray")

            try FileManager.default.removeItem(atPath: path)
            #expect(try test.store.collectGarbage(grace: 0).freedBytes == 0)
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    @Test func taggedBuildsKeepTheirInputsAndUntaggedRecipesGo() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let build = try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/kept"))
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            let adapter = try test.store.resolve(try Reference(parsing: "acme/a")).digest
            try test.store.untag(try Reference(parsing: "acme/a"), force: true)
            try test.store.untag(try Reference(parsing: "micro/base:fp32"), force: true)
            try test.store.pull("\(base)+\(adapter)@0.5", to: directory.appending(path: "adhoc"))
            let report = try test.store.collectGarbage(grace: 0)
            #expect(report.manifests.count == 1, "only the untagged ad-hoc recipe")
            #expect(report.blobs.count == 4, "with its materialized tensors")
            let pulled = try test.store.pull("acme/kept", to: directory.appending(path: "kept"))
            #expect(pulled.digest == build)
        }
    }

    /// An untagged build survives while pinned or while another process holds it (a pull or a server), and
    /// keeps its untagged adapter; once neither holds, it goes.
    @Test func pinnedAndHeldUntaggedBuildsSurviveWithTheirInputs() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32").digest
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            let build = try test.store.pull("\(base)+\(adapter)@0.5", to: directory.appending(path: "adhoc")).digest
            try test.store.untag(try Reference(parsing: "acme/a"), force: true)

            try test.store.setPinned(Reference(digest: build), true)
            #expect(try test.store.collectGarbage(grace: 0).manifests.isEmpty, "pinned: the build and its adapter stay")
            try test.store.setPinned(Reference(digest: build), false)

            let reader = try test.store.buildLock(build)
            try reader.lock(.shared)
            let whileHeld = try test.store.collectGarbage(grace: 0)
            #expect(whileHeld.manifests.isEmpty && whileHeld.keptInUse == 1)
            reader.unlock()

            let report = try test.store.collectGarbage(grace: 0)
            #expect(Set(report.manifests) == [build, adapter])
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// An untagged build's age counts from its last pull, not from when it was first recorded.
    @Test func anUntaggedBuildAgesFromItsLastPull() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            let adapter = try test.push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32").digest
            let base = try test.store.resolve(try Reference(parsing: "micro/base:fp32")).digest
            let recipe = "\(base)+\(adapter)@0.5"
            let build = try test.store.pull(recipe, to: directory.appending(path: "first")).digest
            let twoHoursAgo = Date().timeIntervalSince1970 - 7200
            try test.store.index.database.write { db in
                try db.execute(sql: "UPDATE manifest SET created_at = ?", arguments: [twoHoursAgo])
                try db.execute(sql: "UPDATE blob SET created_at = ?", arguments: [twoHoursAgo])
                try db.execute(sql: "UPDATE build SET last_pulled_at = ?", arguments: [twoHoursAgo])
            }
            try test.store.pull(recipe, to: directory.appending(path: "again"))
            let kept = try test.store.collectGarbage(grace: 3600)
            #expect(kept.manifests.isEmpty && kept.blobs.isEmpty, "pulled just now")

            try test.store.index.database.write { db in
                try db.execute(sql: "UPDATE build SET last_pulled_at = ?", arguments: [twoHoursAgo])
            }
            #expect(try test.store.collectGarbage(grace: 3600).manifests == [build])
        }
    }

    /// A collection removes an untagged ad-hoc build while a pull of the same recipe waits for the build's
    /// lock, and the pull records the recipe again and merges it instead of failing on the vanished build.
    /// The pull waits either for its first, shared hold (the collection holds the lock while it sweeps; the
    /// build was pulled before) or, holding it shared, for the exclusive lock it merges under (another
    /// reader holds it; `flock` releases the shared hold meanwhile, which lets a collection in).
    @Test(arguments: [FileLock.Mode.exclusive, .shared])
    func anAdHocPullOutlastsTheCollectionOfItsBuild(heldAs mode: FileLock.Mode) throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            let recipe = "micro/base:fp32+acme/a@0.5"
            if mode == .exclusive { try test.store.pull(recipe, to: directory.appending(path: "first")) }
            let build = try test.store.resolveBuild(recipe)
            let holder = try test.store.buildLock(build)
            try holder.lock(mode)
            let (root, pulled) = (test.store.root, directory.appending(path: "pulled"))
            let outcome = Mutex<Result<PullResult, any Error>?>(nil)
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                let result = Result { try Store(root: root).pull(recipe, to: pulled) }
                outcome.withLock { $0 = result }
            }
            try waitUntilSomeoneWaits(forLockAt: holder.path)
            // What a collection does once it has the lock: the build's rows go, its files stay.
            try test.store.index.database.write { db in
                try db.execute(sql: "DELETE FROM manifest WHERE digest = ?", arguments: [build])
            }
            holder.unlock()
            group.wait()
            let result = try #require(outcome.withLock { $0 }).get()
            #expect(result.merged && result.digest == build)
            #expect(try test.store.resolve(Reference(digest: build)).kind == .build)
            #expect(FileManager.default.fileExists(atPath: pulled.appending(path: "model.safetensors").path))
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A collection that starts while an upload is being received (the registry holds the maintenance lock
    /// from before it creates the spool file) waits for the upload to be stored instead of sweeping its
    /// spool file; then it runs.
    @Test func aCollectionWaitsForAnUploadInTransfer() throws {
        try TemporaryDirectory.with { directory in
            let store = try TestStore(in: directory).store
            let bytes = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let digest = Digest(of: bytes)
            let hold = try store.holdMaintenance()
            let upload = try BlobUpload(
                into: store, digest: digest, repository: "acme/upload", expectedSize: bytes.count, limit: bytes.count)
            try bytes.withUnsafeBytes { try upload.append(UnsafeRawBufferPointer(rebasing: $0[..<32768])) }
            let root = store.root
            let collected = Mutex<Result<GarbageCollectionReport, any Error>?>(nil)
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                let result = Result { try Store(root: root).collectGarbage(grace: 0) }
                collected.withLock { $0 = result }
            }
            try waitUntilSomeoneWaits(forLockAt: root.appending(path: "locks/maintenance.lock").path)
            #expect(collected.withLock { $0 } == nil, "the collection ran during the upload")
            try bytes.withUnsafeBytes { try upload.append(UnsafeRawBufferPointer(rebasing: $0[32768...])) }
            let stored = try upload.finish()
            #expect(stored.created && store.blobs.storedSize(of: digest) == bytes.count)
            hold.unlock()
            group.wait()
            // Unreferenced and past a grace of 0, the blob goes with the collection that waited for it.
            _ = try #require(collected.withLock { $0 }).get()
            #expect(store.blobs.storedSize(of: digest) == nil)
        }
    }

    /// Returns once another thread or process is blocked on the `flock` of the file at `path`, as
    /// `/proc/locks` lists it (`->` before a waiting request, then the file's device and inode); without
    /// `/proc/locks`, after half a second, and where it never shows the waiter, after 30 s. Only the
    /// test's sharpness depends on it: a pull that reaches the lock later passes with either code.
    private func waitUntilSomeoneWaits(forLockAt path: String) throws {
        var status = stat()
        guard stat(path, &status) == 0 else { throw FileAccessError(.open, path: path) }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else {
                Thread.sleep(forTimeInterval: 0.5)
                return
            }
            let waiting = locks.split(separator: "\n").contains { line in
                line.contains("->") && line.split(separator: " ").contains { $0.hasSuffix(":\(status.st_ino)") }
            }
            if waiting { return }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    /// Pushes, removals and pulls in separate processes while another process collects garbage with no
    /// grace period: everything that was committed stays whole.
    @Test func raceWithPushesAndPulls() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            func lorastore(_ arguments: [String]) throws -> (Process, Pipe) {
                try CommandLineTool.start(arguments + ["--store", store])
            }
            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base:fp32", "--store", store]).status == 0)
            #expect(try CommandLineTool.run(["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base:fp32", "--store", store]).status == 0)
            #expect(try CommandLineTool.run(["build", "create", "acme/mix", "--base", "micro/base:fp32", "--adapter", "acme/a@0.5", "--store", store]).status == 0)
            let adapters = ["a2_r8_qkv", "b_r16_all_rslora", "c_r4_patterns", "d_r8_qv_lmhead_saved"]
            for round in 0..<3 {
                var processes = try adapters.map { adapter in
                    try lorastore(["push", Fixtures.url("adapters/\(adapter)").path, "acme/\(adapter.replacingOccurrences(of: "_", with: "-")):r\(round)", "--base", "micro/base:fp32"])
                }
                processes.append(try lorastore(["pull", "acme/mix", "-o", directory.appending(path: "pull-\(round)").path]))
                if round > 0 {
                    processes.append(try lorastore(["rm", "acme/b-r16-all-rslora:r\(round - 1)"]))
                }
                let collectors = try (0..<3).map { _ in try lorastore(["gc", "--grace", "0s"]) }
                for started in processes + collectors {
                    let result = CommandLineTool.finish(started)
                    #expect(result.status == 0, "\(result.output)")
                }
            }
            let opened = try Store(root: URL(fileURLWithPath: store))
            #expect(try opened.verify(deep: true).faults.isEmpty)
            #expect(try opened.blobsMissingFromTaggedManifests() == [])
            #expect(try opened.list(kind: .adapter).count == 1 + 3 * adapters.count - 2)
        }
    }
}
