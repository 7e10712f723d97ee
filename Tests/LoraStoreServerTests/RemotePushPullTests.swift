import Foundation
import LoraStoreClient
import LoraStoreCore
import LoraStoreServer
import Testing

/// Pushing and pulling through a live server on loopback with the real client.
@Suite struct RemotePushPullTests {
    @Test func mergedBuildPulledRemotelyEqualsLocalPull() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let remote = registry.directory.appending(path: "remote-pull")
            let result = try await client.pull("acme/merged:v1", to: remote)
            #expect(result.kind == .build)

            let local = try Store(root: registry.directory.appending(path: "local-store"))
            try TestRegistry.seed(local)
            let localFolder = registry.directory.appending(path: "local-pull")
            let localResult = try local.pull("acme/merged:v1", to: localFolder)
            #expect(localResult.digest == result.digest)
            #expect(try folderContents(remote) == folderContents(localFolder))
            // Both report the bytes of the files they wrote; the merge's first pull and a later one agree.
            let written = try folderContents(localFolder).values.reduce(0) { $0 + $1.count }
            #expect(result.bytes == written && localResult.bytes == written)
            #expect(try local.pull("acme/merged:v1", to: registry.directory.appending(path: "local-again")).bytes == written)

            let adapterRemote = registry.directory.appending(path: "adapter-remote")
            let adapterLocal = registry.directory.appending(path: "adapter-local")
            let adapterPull = try await client.pull("acme/a", to: adapterRemote)
            let adapterLocalPull = try local.pull("acme/a", to: adapterLocal)
            #expect(try folderContents(adapterRemote) == folderContents(adapterLocal))
            #expect(adapterPull.bytes == adapterLocalPull.bytes)
            // Uploads are stored with the codecs a local push picks (the exponent codec for F32 adapter tensors).
            for name in ["acme/a", "acme/b", "micro/base:fp32"] {
                let reference = try Reference(parsing: name)
                let served = try registry.store.describe(reference).tensors.map { [$0.codec.rawValue, "\($0.storedSize)"] }
                #expect(served == (try local.describe(reference).tensors.map { [$0.codec.rawValue, "\($0.storedSize)"] }))
            }
            #expect(try registry.store.describe(try Reference(parsing: "acme/a")).tensors.contains { $0.codec == .exponentANS })
            #expect(try registry.store.verify(deep: true).faults.isEmpty)
        }
    }

    /// A build merged to another type names that type in its config.json (loading with dtype="auto" reads
    /// it), pulled locally or from the registry, and so does an immediate merge.
    @Test func aBuildOfAnotherTypeSaysSoInItsConfig() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let half = try Reference(parsing: "acme/half:v1")
            try await client.createBuild(
                tag: half, base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                options: MergeOptions(outputType: .f16))
            let remote = registry.directory.appending(path: "half-remote")
            try await client.pull("acme/half:v1", to: remote)
            let local = registry.directory.appending(path: "half-local")
            try registry.store.pull("acme/half:v1", to: local)
            #expect(try folderContents(remote) == folderContents(local))
            let config = try String(contentsOf: local.appending(path: "config.json"), encoding: .utf8)
            #expect(config.contains(#""dtype": "float16""#) && !config.contains("float32"), "\(config)")
            let merged = registry.directory.appending(path: "half-merge")
            try registry.store.merge(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                options: MergeOptions(outputType: .f16), to: merged)
            #expect(try Data(contentsOf: merged.appending(path: "config.json")) == Data(config.utf8))
            // The base's own pulls keep its config as pushed.
            let basePull = registry.directory.appending(path: "base")
            try registry.store.pull("micro/base:fp32", to: basePull)
            #expect(try String(contentsOf: basePull.appending(path: "config.json"), encoding: .utf8).contains("float32"))
        }
    }

    /// A build of an adapter on a base of the same shapes but another model is refused as `OTHER_BASE`,
    /// naming both bases, and recorded when the request allows it; the same model in another layout or type
    /// needs no permission.
    @Test func aBuildOnAnotherModelNeedsTheRequestToAllowIt() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let tuned = registry.directory.appending(path: "tuned")
            try Fixtures.copy("base_fp32", to: tuned, flippingFirstBitOf: "model.layers.1.mlp.up_proj.weight")
            try await client.push(tuned, to: try Reference(parsing: "micro/tuned"))
            let builds = { try registry.store.index.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM build") } }
            let before = try builds()
            let tag = try Reference(parsing: "acme/tuned-a:v1")
            let adapters = [(reference: try Reference(parsing: "acme/a"), weight: 1.0)]
            do {
                try await client.createBuild(tag: tag, base: try Reference(parsing: "micro/tuned"), adapters: adapters)
                Issue.record("a build on another model was recorded")
            } catch RegistryClientError.server(let status, let code, let message) {
                #expect(status == 400 && code == "OTHER_BASE")
                #expect(message.contains("micro/base:fp32") && message.contains("micro/tuned:latest"), "\(message)")
            }
            #expect(try builds() == before)
            try await client.createBuild(
                tag: tag, base: try Reference(parsing: "micro/tuned"), adapters: adapters, allowingOtherBase: true)
            try await client.pull("acme/tuned-a:v1", to: registry.directory.appending(path: "pulled"))
            try await client.push(Fixtures.url("base_fp32_sharded"), to: try Reference(parsing: "micro/sharded"))
            try await client.push(Fixtures.url("base_bf16"), to: try Reference(parsing: "micro/base:bf16"))
            for base in ["micro/sharded", "micro/base:bf16"] {
                try await client.createBuild(
                    tag: try Reference(parsing: "acme/fine:v1"), base: try Reference(parsing: base), adapters: adapters)
            }
        }
    }

    /// A base whose tensor blob was damaged on the registry's disk is not served: listing its files reads
    /// every tensor back against its digest, so the pull fails (the server's log names the blob) instead of
    /// handing out the damaged bytes under a digest computed from them.
    @Test func aDamagedBaseIsNotServed() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let manifest = try registry.store.resolve(try Reference(parsing: "micro/base:fp32")).manifest
            let tensor = try #require(manifest.tensors.max { $0.size < $1.size })
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: registry.store.blobs.path(of: tensor.digest)))
            try handle.seek(toOffset: 100)
            let byte = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: 100)
            try handle.write(contentsOf: [byte ^ 0x40])
            try handle.close()
            let destination = registry.directory.appending(path: "pulled")
            await #expect {
                try await client.pull("micro/base:fp32", to: destination)
            } throws: { error in
                guard case RegistryClientError.server(let status, _, _) = error else { return false }
                return status == 500
            }
            #expect(!FileManager.default.fileExists(atPath: destination.path))
        }
    }

    /// A push and a pull that find the registry busy with a collection (answered BUSY after its 200 ms
    /// wait) pause and try again, and go through once the collection is over.
    @Test func pushAndPullWaitOutACollectionOnTheRegistry() async throws {
        try await TestRegistry.with(maintenanceWait: .milliseconds(200)) { registry in
            let client = registry.client()
            let base = try Reference(parsing: "micro/base:fp32")
            let locks = registry.store.root.appending(path: "locks")
            try FileManager.default.createDirectory(at: locks, withIntermediateDirectories: true)
            let collection = try FileLock(path: locks.appending(path: "maintenance.lock").path)
            /// Runs `request` while a collection holds the store, which ends once the registry has answered
            /// BUSY at least once (or after 30 s, a failure).
            func duringACollection(_ request: @escaping @Sendable () async throws -> Void) async throws {
                let busyBefore = registry.serverErrorAnswers
                try collection.lock(.exclusive)
                let running = Task { try await request() }
                let deadline = ContinuousClock.now + .seconds(30)
                while registry.serverErrorAnswers == busyBefore, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(registry.serverErrorAnswers > busyBefore, "the registry never answered busy")
                collection.unlock()
                try await running.value
            }
            try await duringACollection { try await client.push(Fixtures.url("base_fp32"), to: base) }
            #expect(try registry.store.resolve(base).manifest.kind == .base)

            try await client.push(
                Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"), options: PushOptions(base: base))
            try await client.createBuild(
                tag: try Reference(parsing: "acme/a-build:v1"), base: base, adapters: [(try Reference(parsing: "acme/a"), 1)])
            let pulled = registry.directory.appending(path: "pulled")
            try await duringACollection { try await client.pull("acme/a-build:v1", to: pulled) }
            #expect(FileManager.default.fileExists(atPath: pulled.appending(path: "model.safetensors").path))
        }
    }

    @Test func anUnreachableRegistryIsNamedInTheError() async throws {
        let client = RegistryClient(endpoint: URL(string: "http://127.0.0.1:1")!)
        await #expect {
            try await client.list()
        } throws: { error in
            guard case RegistryClientError.transport(let url, let reason) = error else { return false }
            return url.hasPrefix("http://127.0.0.1:1/") && reason.contains("connection refused")
        }
    }

    /// `https://` to a registry that speaks plain HTTP is named as such, not as a raw TLS library error.
    @Test func httpsToAPlainRegistryIsNamedInTheError() async throws {
        try await TestRegistry.with { registry in
            var parts = try #require(URLComponents(url: registry.endpoint, resolvingAgainstBaseURL: false))
            parts.scheme = "https"
            let client = RegistryClient(endpoint: try #require(parts.url))
            await #expect {
                try await client.list()
            } throws: { error in
                guard case RegistryClientError.transport(_, let reason) = error else { return false }
                return reason.contains("did not answer in TLS") && reason.contains("http://")
            }
        }
    }

    /// File names are percent-encoded in URLs; the server decodes them, so a file with a space travels.
    @Test func aFileNameWithASpaceIsPushedAndPulled() async throws {
        try await TestRegistry.with { registry in
            let folder = registry.directory.appending(path: "spaced")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for file in try FileManager.default.contentsOfDirectory(atPath: Fixtures.url("base_fp32").path) {
                try FileManager.default.copyItem(at: Fixtures.url("base_fp32").appending(path: file), to: folder.appending(path: file))
            }
            try Data("{\"pad\": 0}".utf8).write(to: folder.appending(path: "special tokens.json"))
            let client = registry.client()
            try await client.push(folder, to: try Reference(parsing: "micro/spaced:v1"))
            let pulled = registry.directory.appending(path: "pulled")
            try await client.pull("micro/spaced:v1", to: pulled)
            #expect(try Data(contentsOf: pulled.appending(path: "special tokens.json")) == Data("{\"pad\": 0}".utf8))
        }
    }

    /// The server holds a build while it sends it: a cache budget smaller than the build neither evicts it
    /// between the merge and the download (which answered 404 on every try) nor under the download.
    @Test func aBuildLargerThanTheCacheBudgetIsStillServed() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            try registry.store.setCacheBudget(0)
            let remote = registry.directory.appending(path: "remote-pull")
            let result = try await client.pull("acme/merged:v1", to: remote)
            let local = registry.directory.appending(path: "local-pull")
            try registry.store.pull("acme/merged:v1", to: local)
            #expect(try folderContents(remote) == folderContents(local))
            #expect(result.kind == .build)
        }
    }

    /// A `separate` build on a quantized base pulls over HTTP as locally: the base as stored, and each
    /// adapter untouched in its folder under adapters/ (files in folders, downloaded and checked like the rest).
    @Test func separateBuildPulledRemotelyHasItsAdapterFolders() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let quantized = try Reference(parsing: "micro/base:i8")
            try registry.store.quantize(try Reference(parsing: "micro/base:fp32"), scheme: .int8Row, to: quantized)
            try registry.store.createBuild(
                base: quantized, adapters: [(try Reference(parsing: "acme/a"), 1), (try Reference(parsing: "acme/b"), 1)],
                options: MergeOptions(quantizedBase: .separate), tag: try Reference(parsing: "acme/separate:v1"))
            let remote = registry.directory.appending(path: "separate-remote")
            let result = try await client.pull("acme/separate:v1", to: remote)
            let local = registry.directory.appending(path: "separate-local")
            try registry.store.pull("acme/separate:v1", to: local)
            let remoteFiles = try folderContents(remote)
            #expect(remoteFiles == (try folderContents(local)))
            #expect(remoteFiles.keys.filter { $0.hasPrefix("adapters/") }.count == 4, "config and weights of each adapter")
            #expect(result.files.keys.contains { $0.hasPrefix("adapters/1-") && $0.hasSuffix("/adapter_model.safetensors") })
        }
    }

    @Test func secondPushOfTheSameBaseSendsNoTensorBytes() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            let first = try await client.push(Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base:fp32"))
            #expect(first.newBlobs > 0)
            let again = try await client.push(Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base:again"))
            #expect(again.newBlobs == 0)
            #expect(again.newLogicalBytes == 0)
            #expect(again.digest == first.digest)
            // The sharded layout of the same model shares every tensor: only its small files are new.
            let sharded = try await client.push(
                Fixtures.url("base_fp32_sharded"), to: try Reference(parsing: "micro/base:sharded"))
            let tensorBytes = sharded.logicalBytes - sharded.reusedBytes - sharded.newLogicalBytes
            #expect(tensorBytes == 0)
            let shardIndex = try FileManager.default.attributesOfItem(
                atPath: Fixtures.url("base_fp32_sharded/model.safetensors.index.json").path)[.size] as? Int
            #expect(sharded.newLogicalBytes == shardIndex, "only the shard index is new")
        }
    }

    /// A remote push checks what it is given as a base as a local push does: an adapter named as the base is
    /// refused by kind (not by its missing tensors), and a base given for a folder that reads as a base
    /// model is refused before anything is sent.
    @Test func aRemotePushChecksWhatItIsGivenAsABase() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await client.push(Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base"))
            try await client.push(
                Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"),
                options: PushOptions(base: try Reference(parsing: "micro/base")))
            await #expect {
                try await client.push(
                    Fixtures.url("adapters/b_r16_all_rslora"), to: try Reference(parsing: "acme/b"),
                    options: PushOptions(base: try Reference(parsing: "acme/a")))
            } throws: { "\($0)".contains("acme/a") && "\($0)".contains("adapter") && !"\($0)".contains("another base") }
            await #expect {
                try await client.push(
                    Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/again"),
                    options: PushOptions(base: try Reference(parsing: "micro/base")))
            } throws: { "\($0)".contains("adapter_config.json") }
            #expect(try registry.store.list().map(\.repository).sorted() == ["acme/a", "micro/base"])
        }
    }

    /// An adapter pushed without a base is checked against the base the repository's last push used; when
    /// reads need tokens and this token cannot read that base, the error says so (it said no base was
    /// recorded).
    @Test func aRecordedBaseTheTokenCannotReadIsNamedAsSuch() async throws {
        try await TestRegistry.with(RegistryConfiguration(requireTokenForReads: true)) { registry in
            let admin = registry.client()
            try await admin.push(Fixtures.url("base_fp32"), to: try Reference(parsing: "shared/base"))
            try await admin.push(
                Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"),
                options: PushOptions(base: try Reference(parsing: "shared/base")))
            let pusher = try registry.store.createToken(scope: .push, namespace: "acme/*")
            await #expect {
                try await registry.client(token: pusher.secret).push(
                    Fixtures.url("adapters/b_r16_all_rslora"), to: try Reference(parsing: "acme/a:v2"))
            } throws: { "\($0)".contains("cannot be read with this token") }
            #expect(try await admin.list(kind: .adapter).count == 1)
        }
    }

    /// PEFT lays GPT-2's Conv1D modules out as `[in, out]` whatever an adapter's `fan_in_fan_out` says. The
    /// client reads the base's `model_type` from the registry, so it accepts such an adapter saved with the
    /// flag cleared (its non-square `c_attn` was refused before), and records what a local push records.
    @Test func aGPT2AdapterIsLaidOutByTheBaseModelTypeOnTheClient() async throws {
        try await TestRegistry.with { registry in
            let fixture = Fixtures.url("adapters/g_gpt2_r8_fan_in_fan_out")
            let folder = registry.directory.appending(path: "gpt2-flag-cleared")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: fixture.appending(path: "adapter_model.safetensors"), to: folder.appending(path: "adapter_model.safetensors"))
            let config = try String(contentsOf: fixture.appending(path: "adapter_config.json"), encoding: .utf8)
            let cleared = config.replacingOccurrences(of: "\"fan_in_fan_out\": true", with: "\"fan_in_fan_out\": false")
            #expect(cleared != config)
            try Data(cleared.utf8).write(to: folder.appending(path: "adapter_config.json"))

            let client = registry.client()
            let base = try Reference(parsing: "micro/gpt2:fp32")
            try await client.push(Fixtures.url("gpt2_fp32"), to: base)
            let pushed = try await client.push(folder, to: try Reference(parsing: "acme/gpt2"), options: PushOptions(base: base))

            let local = try Store(root: registry.directory.appending(path: "local-store"))
            try local.push(Fixtures.url("gpt2_fp32"), to: base)
            let localResult = try local.push(folder, to: try Reference(parsing: "acme/gpt2"), options: PushOptions(base: base))
            #expect(pushed.digest == localResult.digest)
        }
    }

    @Test func interruptedPushAndPullContinue() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            // A push that stopped after uploading some blobs: upload part of an adapter's blobs first.
            let base = try await client.manifest(try Reference(parsing: "micro/base:fp32"))
            let package = try PushPackage(path: Fixtures.url("adapters/d_r8_qv_lmhead_saved"), base: base)
            let missing = try registry.store.missingBlobs(among: package.blobDigests)
            let sent = Array(missing.prefix(missing.count / 2))
            for digest in sent {
                let upload = try BlobUpload(
                    into: registry.store, digest: digest, repository: "acme/d", expectedSize: package.size(of: digest),
                    limit: 1 << 30)
                try package.withBytes(of: digest) { try upload.append($0) }
                _ = try upload.finish()
            }
            let pushed = try await client.push(
                Fixtures.url("adapters/d_r8_qv_lmhead_saved"), to: try Reference(parsing: "acme/d"),
                options: PushOptions(base: try Reference(parsing: "micro/base:fp32")))
            #expect(pushed.newBlobs == missing.count - sent.count)

            // A pull that stopped halfway through the merged model: run again, it fetches only the rest.
            let full = registry.directory.appending(path: "full")
            try await client.pull("acme/merged:v1", to: full)
            let model = try Data(contentsOf: full.appending(path: "model.safetensors"))
            let destination = registry.directory.appending(path: "resumed")
            let staging = registry.directory.appending(path: ".resumed.pulling")
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            try model.prefix(model.count / 2).write(to: staging.appending(path: "model.safetensors"))
            let before = registry.downloadedBytes
            try await client.pull("acme/merged:v1", to: destination)
            let sentAgain = registry.downloadedBytes - before
            let total = try folderContents(full).values.reduce(0) { $0 + $1.count }
            #expect(sentAgain == total - model.count / 2)
            #expect(try folderContents(destination) == folderContents(full))
            #expect(!FileManager.default.fileExists(atPath: staging.path))
        }
    }

    /// Two pulls into one folder at once: one succeeds with the whole model, the other fails saying the
    /// folder was filled meanwhile (they used to share one staging folder and both report success over an
    /// incomplete model), and the losers leave no staging folder. Another machine's staging folder is left
    /// alone.
    @Test func twoPullsIntoOneFolderAtOnceLeaveOneWholeModel() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let full = registry.directory.appending(path: "full")
            try await client.pull("acme/merged:v1", to: full)
            let running = registry.directory.appending(path: ".same.pulling-0badc0de-4242-1")
            try FileManager.default.createDirectory(at: running, withIntermediateDirectories: true)
            for round in 0..<4 {
                let destination = registry.directory.appending(path: "same")
                try? FileManager.default.removeItem(at: destination)
                @Sendable func failure() async -> String? {
                    do {
                        _ = try await client.pull("acme/merged:v1", to: destination)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
                async let first = failure()
                async let second = failure()
                let failures = await [first, second].compactMap { $0 }
                #expect(failures.count <= 1, "round \(round): \(failures)")
                #expect(failures.allSatisfy { $0.contains("exists and is not an empty folder") }, "round \(round): \(failures)")
                #expect(try folderContents(destination) == folderContents(full), "round \(round)")
            }
            #expect(FileManager.default.fileExists(atPath: running.path), "another machine's folder was taken")
            let staged = try FileManager.default.contentsOfDirectory(atPath: registry.directory.path).filter { $0.hasPrefix(".same.") }
            #expect(staged == [running.lastPathComponent], "a pull that lost left its staging folder: \(staged)")
        }
    }

    /// list, show, lineage and stats through the registry give what the same commands give on a local store
    /// holding the same pushes (times and the index's own size aside).
    @Test func queriesAnswerLikeTheLocalStore() async throws {
        try await TestRegistry.with { registry in
            let client = registry.client()
            try await TestRegistry.seed(client)
            let local = try Store(root: registry.directory.appending(path: "local-store"))
            try TestRegistry.seed(local)

            func undated(_ entries: [ListEntry]) -> [ListEntry] {
                entries.map { entry in
                    var entry = entry
                    entry.updatedAt = .distantPast
                    return entry
                }
            }
            #expect(undated(try await client.list()) == undated(try local.list()))
            #expect(try await client.list().map { "\($0.repository):\($0.tag)" } == ["acme/a:latest", "acme/b:latest", "acme/merged:v1", "micro/base:fp32"])
            #expect(undated(try await client.list(kind: .adapter)) == undated(try local.list(kind: .adapter)))
            for name in ["acme/a", "micro/base:fp32", "acme/merged:v1"] {
                var remote = try await client.describe(try Reference(parsing: name))
                var here = try local.describe(try Reference(parsing: name))
                remote.createdAt = .distantPast
                here.createdAt = .distantPast
                #expect(remote == here, "\(name)")
            }
            for name in ["acme/a", "acme/merged:v1", "micro/base:fp32"] {
                #expect(try await client.lineage(try Reference(parsing: name)) == local.lineage(try Reference(parsing: name)), "\(name)")
            }
            var remoteStats = try await client.stats()
            var localStats = try local.stats()
            remoteStats.indexBytes = 0
            localStats.indexBytes = 0
            #expect(remoteStats == localStats)
        }
    }
}
