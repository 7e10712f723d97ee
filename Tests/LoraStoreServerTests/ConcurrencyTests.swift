import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import LoraStoreClient
import LoraStoreCore
import LoraStoreServer
import Testing

/// Many clients at once against one server.
@Suite struct ConcurrencyTests {
    /// While garbage collection holds the store's maintenance lock for longer than the registry's wait, an
    /// upload is answered 503 BUSY with Retry-After, not left waiting; once the collection is over, the same
    /// upload goes through.
    @Test func writesDuringALongCollectionAreAnsweredBusy() async throws {
        let configuration = RegistryConfiguration(maxBlobSize: 64, workerThreads: 2)
        try await RouterTest.with(configuration, maintenanceWait: .milliseconds(200)) { client, store, admin in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let bytes = Array("tensor bytes pushed during a collection".utf8)
            let uri = "/api/v1/blobs/\(Digest(of: bytes).hex)?repository=acme/x"
            let collection = try FileLock(path: store.root.appending(path: "locks/maintenance.lock").path)
            try collection.lock(.exclusive)
            try await client.execute(uri: uri, method: .put, headers: auth, body: ByteBuffer(bytes: bytes)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(RouterTest.code(of: response) == "BUSY")
                #expect(response.headers[.retryAfter] == "1", "the 200 ms the registry waited, rounded up to a second")
            }
            #expect(store.blobs.storedSize(of: Digest(of: bytes)) == nil)
            // Too large is the answer even then: waiting would only postpone it.
            let large = [UInt8](repeating: 7, count: 100)
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: large).hex)?repository=acme/x", method: .put,
                headers: [.authorization: "Bearer \(admin)", .contentLength: "100"], body: ByteBuffer(bytes: large)
            ) { response in
                #expect(response.status == .contentTooLarge)
            }
            collection.unlock()
            try await client.execute(uri: uri, method: .put, headers: auth, body: ByteBuffer(bytes: bytes)) { response in
                #expect(response.status == .created || response.status == .ok, "\(response.status)")
            }
            #expect(store.blobs.storedSize(of: Digest(of: bytes)) != nil)
        }
    }

    /// An upload that arrives during a collection creates its spool file only once the collection is over:
    /// a collection with no grace period sweeps every unindexed file in `tmp/`, and swept the spool file of
    /// an upload that had created it before waiting (the upload then failed with 500).
    @Test func anUploadWaitingForACollectionHasNoSpoolFileYet() async throws {
        let configuration = RegistryConfiguration(workerThreads: 2)
        try await RouterTest.with(configuration, maintenanceWait: .seconds(20)) { client, store, admin in
            let bytes = Array("tensor bytes pushed while a collection sweeps tmp/".utf8)
            let collection = try FileLock(path: store.root.appending(path: "locks/maintenance.lock").path)
            try collection.lock(.exclusive)
            let upload = Task {
                try await client.execute(
                    uri: "/api/v1/blobs/\(Digest(of: bytes).hex)?repository=acme/x", method: .put,
                    headers: [.authorization: "Bearer \(admin)"], body: ByteBuffer(bytes: bytes)
                ) { $0.status }
            }
            var spooled: [String] = []
            for _ in 0..<30 where spooled.isEmpty {
                try await Task.sleep(for: .milliseconds(10))
                spooled = try FileManager.default.contentsOfDirectory(atPath: store.blobs.temporaryDirectory.path)
            }
            #expect(spooled.isEmpty, "the upload created \(spooled) while the collection ran")
            collection.unlock()
            #expect(try await upload.value == .created)
            #expect(store.blobs.storedSize(of: Digest(of: bytes)) != nil)
        }
    }

    /// While another process holds the index's write lock for longer than a write waits, an upload is
    /// answered 503 BUSY with Retry-After (a passing state the CLI retries), not 500, after one busy
    /// timeout (its clean-up does not wait out a second one); once the lock is released, the same upload
    /// goes through.
    @Test func writesWhileAnotherProcessHoldsTheIndexAreAnsweredBusy() async throws {
        try await RouterTest.with(indexBusyTimeout: .seconds(1)) { client, store, admin in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let bytes = Array("tensor bytes pushed while the index is locked".utf8)
            let uri = "/api/v1/blobs/\(Digest(of: bytes).hex)?repository=acme/x"
            // Another process's connection, its write transaction left open.
            var configuration = Configuration()
            configuration.allowsUnsafeTransactions = true
            let writer = try DatabaseQueue(path: store.index.path, configuration: configuration)
            try writer.inDatabase { try $0.beginTransaction(.immediate) }
            let started = ContinuousClock.now
            try await client.execute(uri: uri, method: .put, headers: auth, body: ByteBuffer(bytes: bytes)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(RouterTest.code(of: response) == "BUSY")
                #expect(response.headers[.retryAfter] == "5")
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .seconds(1) && waited < .milliseconds(1800), "\(waited)")
            // Its file stays unindexed, for garbage collection.
            #expect(try store.blobInfo(Digest(of: bytes)) == nil)
            try writer.inDatabase { try $0.rollback() }
            try await client.execute(uri: uri, method: .put, headers: auth, body: ByteBuffer(bytes: bytes)) { response in
                #expect(response.status == .created || response.status == .ok, "\(response.status)")
            }
            #expect(try store.blobInfo(Digest(of: bytes)) != nil)
        }
    }

    /// A registry whose store would wait for a collection without limit still answers an upload BUSY after
    /// half its idle timeout: a connection whose body is not being read counts as idle, and closing it would
    /// reach the client as a broken connection, which it does not retry.
    @Test func anUploadWaitsForACollectionAtMostHalfTheIdleTimeout() async throws {
        let configuration = RegistryConfiguration(workerThreads: 2, idleTimeout: .milliseconds(400))
        try await RouterTest.with(configuration) { client, store, admin in
            let bytes = Array("uploaded while a collection never ends".utf8)
            let collection = try FileLock(path: store.root.appending(path: "locks/maintenance.lock").path)
            try collection.lock(.exclusive)
            defer { collection.unlock() }
            let started = ContinuousClock.now
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: bytes).hex)?repository=acme/x", method: .put,
                headers: [.authorization: "Bearer \(admin)"], body: ByteBuffer(bytes: bytes)
            ) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(RouterTest.code(of: response) == "BUSY")
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(200) && waited < .seconds(10), "\(waited)")
        }
    }

    @Test func sixteenClientsPushingAndPulling() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let base = try Reference(parsing: "micro/base:fp32")
            try await client.createBuild(
                tag: try Reference(parsing: "acme/merged:v2"), base: base,
                adapters: [(try Reference(parsing: "acme/a"), 1), (try Reference(parsing: "acme/b"), -0.5)])
            let folder = registry.directory
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let client = registry.client()
                        if index.isMultiple(of: 2) {
                            let fixture = Fixtures.fp32Adapters[(index / 2) % Fixtures.fp32Adapters.count]
                            try await client.push(
                                Fixtures.url("adapters/\(fixture)"), to: try Reference(parsing: "team/adapter-\(index)"),
                                options: PushOptions(base: base))
                        } else {
                            let build = index % 4 == 1 ? "acme/merged:v1" : "acme/merged:v2"
                            try await client.pull(build, to: folder.appending(path: "pull-\(index)"))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try registry.store.list(kind: .adapter).count == 2 + 8)
            let v1 = try folderContents(folder.appending(path: "pull-1"))
            let v2 = try folderContents(folder.appending(path: "pull-3"))
            for index in stride(from: 1, to: 16, by: 2) {
                #expect(try folderContents(folder.appending(path: "pull-\(index)")) == (index % 4 == 1 ? v1 : v2))
            }
            let status = try registry.store.cacheStatus()
            #expect(status.builds.allSatisfy { $0.materializations == 1 })
            #expect(try registry.store.verify(deep: true).faults.isEmpty)
        }
    }
}
