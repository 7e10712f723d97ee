import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LoraStoreCore
import LoraStoreServer
import Testing

/// When reads need tokens, a token limited to a namespace sees only that namespace, also through the
/// requests that name no repository (`list`, `stats`, lineage, manifests and blobs by digest); a token for
/// `*`, or any caller when reads are open, sees everything as before.
@Suite struct NamespaceVisibilityTests {
    /// The seeded store: what each namespace holds, and the tokens of the tests.
    struct Seeded: Sendable {
        let store: Store
        /// Read on `team-a/*`, read on `*`, push on `team-a/*`.
        let teamA: String
        let everything: String
        let teamAPusher: String
        let base: Digest
        let adapterA: Digest
        let adapterB: Digest
        let buildA: Digest
        let buildB: Digest
        /// Blobs only team-b's manifests hold: adapter b's tensors, and the tensors build b materialized.
        let teamBOnlyBlobs: [Digest]
        /// Blobs team-a's manifests hold: adapter a's tensors, and the tensors build a materialized.
        let teamABlobs: [Digest]
    }

    /// One base tagged in both namespaces (`team-a/base:v1`, `team-b/base:v1`), adapter a in `team-a/a:v1`,
    /// adapter b in `team-b/b:v1`, and the builds `team-a/bot:v1` (a) and `team-b/bot:v1` (b at 0.5), both
    /// materialized.
    private static func seed(_ store: Store) throws -> Seeded {
        let base = try Reference(parsing: "team-a/base:v1")
        try store.push(Fixtures.url("base_fp32"), to: base)
        try store.tag(base, as: try Reference(parsing: "team-b/base:v1"))
        try store.push(Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "team-a/a:v1"), options: PushOptions(base: base))
        try store.push(
            Fixtures.url("adapters/b_r16_all_rslora"), to: try Reference(parsing: "team-b/b:v1"),
            options: PushOptions(base: try Reference(parsing: "team-b/base:v1")))
        let buildA = try store.createBuild(
            base: base, adapters: [(try Reference(parsing: "team-a/a:v1"), 1)], tag: try Reference(parsing: "team-a/bot:v1"))
        let buildB = try store.createBuild(
            base: try Reference(parsing: "team-b/base:v1"), adapters: [(try Reference(parsing: "team-b/b:v1"), 0.5)],
            tag: try Reference(parsing: "team-b/bot:v1"))
        func blobFiles() throws -> Set<Digest> { Set(try store.blobs.allFiles().compactMap(\.digest)) }
        let beforeBuilds = try blobFiles()
        _ = try store.holdForServing(buildA)
        let builtA = try blobFiles().subtracting(beforeBuilds)
        _ = try store.holdForServing(buildB)
        let builtB = try blobFiles().subtracting(beforeBuilds).subtracting(builtA)
        let adapterA = try store.resolve(try Reference(parsing: "team-a/a:v1"))
        let adapterB = try store.resolve(try Reference(parsing: "team-b/b:v1"))
        let tensorsA = Set(adapterA.manifest.tensors.map(\.digest))
        let tensorsB = Set(adapterB.manifest.tensors.map(\.digest)).subtracting(tensorsA)
        #expect(!builtA.isEmpty && !builtB.isEmpty && !tensorsB.isEmpty, "the fixtures give each team blobs of its own")
        return Seeded(
            store: store, teamA: try store.createToken(scope: .read, namespace: "team-a/*").secret,
            everything: try store.createToken(scope: .read).secret,
            teamAPusher: try store.createToken(scope: .push, namespace: "team-a/*").secret,
            base: try store.resolve(base).digest, adapterA: adapterA.digest, adapterB: adapterB.digest, buildA: buildA,
            buildB: buildB, teamBOnlyBlobs: Array(tensorsB.union(builtB)).sorted { $0.hex < $1.hex },
            teamABlobs: Array(tensorsA.union(builtA)).sorted { $0.hex < $1.hex })
    }

    /// Runs `body` with the router test client over the seeded store.
    private func withRegistry(
        requireTokenForReads: Bool = true, _ body: @Sendable @escaping (any TestClientProtocol, Seeded) async throws -> Void
    ) async throws {
        try await TemporaryDirectory.with { directory in
            let store = try Store(root: directory.appending(path: "store"))
            let seeded = try Self.seed(store)
            let app = buildApplication(
                store: store,
                configuration: RegistryConfiguration(requireTokenForReads: requireTokenForReads, workerThreads: 2))
            try await app.test(.router) { client in try await body(client, seeded) }
        }
    }

    /// `GET /api/v1/PATH` with `token` (none when nil), returning the status and body.
    private static func get(
        _ client: any TestClientProtocol, _ path: String, token: String?
    ) async throws -> (status: HTTPResponse.Status, body: Data) {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: RegistryAPI.prefix + "/" + path, method: .get, headers: headers) { response in
            (response.status, Data(buffer: response.body))
        }
    }

    /// The decoded JSON answer of `GET /api/v1/PATH`, which must succeed.
    private static func json<T: Decodable>(
        _ type: T.Type, _ client: any TestClientProtocol, _ path: String, token: String?
    ) async throws -> T {
        let (status, body) = try await get(client, path, token: token)
        try #require(status == .ok, "GET \(path): \(status) \(String(decoding: body, as: UTF8.self))")
        return try RegistryAPI.decoder().decode(type, from: body)
    }

    private static let everyRepository = ["team-a/a", "team-a/base", "team-a/bot", "team-b/b", "team-b/base", "team-b/bot"]

    @Test func listShowsOnlyTheTokensNamespace() async throws {
        try await withRegistry { client, seeded in
            let teamA = try await Self.json([ListEntry].self, client, "list", token: seeded.teamA)
            #expect(teamA.map(\.repository) == ["team-a/a", "team-a/base", "team-a/bot"])
            let adapters = try await Self.json([ListEntry].self, client, "list?kind=adapter", token: seeded.teamA)
            #expect(adapters.map(\.repository) == ["team-a/a"])
            let all = try await Self.json([ListEntry].self, client, "list", token: seeded.everything)
            #expect(all.map(\.repository) == Self.everyRepository)
            #expect(try await Self.get(client, "list", token: nil).status == .unauthorized)

            // A manifest tagged in both namespaces shows team-a's tags only, its own and as a base.
            let base = try await Self.json(ManifestDescription.self, client, "show/team-a/base:v1", token: seeded.teamA)
            #expect(base.tags == ["team-a/base:v1"])
            let adapter = try await Self.json(ManifestDescription.self, client, "show/team-a/a:v1", token: seeded.teamA)
            #expect(adapter.baseTags == ["team-a/base:v1"])
            let seenByAll = try await Self.json(ManifestDescription.self, client, "show/team-a/base:v1", token: seeded.everything)
            #expect(seenByAll.tags == ["team-a/base:v1", "team-b/base:v1"])
        }
    }

    @Test func statsCountOnlyTheTokensNamespace() async throws {
        try await withRegistry { client, seeded in
            let teamA = try await Self.json(StorageStats.self, client, "stats", token: seeded.teamA)
            #expect(Set(teamA.entries.map(\.digest)) == [seeded.base, seeded.adapterA, seeded.buildA])
            #expect(teamA.entries.flatMap(\.tags).allSatisfy { $0.hasPrefix("team-a/") })
            #expect(teamA.logicalBytes == teamA.entries.reduce(0) { $0 + $1.logicalBytes })
            #expect(
                teamA.logicalBytes - teamA.dedupSavedBytes - teamA.compressionSavedBytes - teamA.buildSavedBytes
                    == teamA.storedBytes)
            #expect(teamA.unreferencedBytes == 0 && teamA.indexBytes == 0)

            let whole = try seeded.store.stats()
            let all = try await Self.json(StorageStats.self, client, "stats", token: seeded.everything)
            #expect(all.entries == whole.entries)
            #expect(all.logicalBytes == whole.logicalBytes && all.storedBytes == whole.storedBytes)
            #expect(teamA.logicalBytes < all.logicalBytes && teamA.storedBytes < all.storedBytes)

            // One of team-a's manifests: its entry, with the same team-a totals.
            let one = try await Self.json(StorageStats.self, client, "stats/team-a/a:v1", token: seeded.teamA)
            #expect(one.entries.map(\.digest) == [seeded.adapterA])
            #expect(one.storedBytes == teamA.storedBytes)
            #expect(try await Self.get(client, "stats/team-b/b:v1", token: seeded.teamA).status == .forbidden)
            #expect(try await Self.get(client, "stats/\(seeded.adapterB)", token: seeded.teamA).status == .notFound)
        }
    }

    @Test func lineageHidesOtherNamespaces() async throws {
        try await withRegistry { client, seeded in
            let teamA = try await Self.json(Lineage.self, client, "lineage/team-a/base:v1", token: seeded.teamA)
            #expect(teamA.subject.tags == ["team-a/base:v1"])
            #expect(teamA.derivedAdapters.map(\.digest) == [seeded.adapterA])
            #expect(teamA.derivedBuilds.map(\.digest) == [seeded.buildA])
            #expect((teamA.derivedAdapters + teamA.derivedBuilds).flatMap(\.tags) == ["team-a/a:v1", "team-a/bot:v1"])

            let all = try await Self.json(Lineage.self, client, "lineage/team-a/base:v1", token: seeded.everything)
            #expect(Set(all.derivedAdapters.map(\.digest)) == [seeded.adapterA, seeded.adapterB])
            #expect(Set(all.derivedBuilds.map(\.digest)) == [seeded.buildA, seeded.buildB])

            // A build's inputs stay (its manifest names them), with team-a's tags only.
            let build = try await Self.json(Lineage.self, client, "lineage/team-a/bot:v1", token: seeded.teamA)
            #expect(build.base?.digest == seeded.base && build.base?.tags == ["team-a/base:v1"])
            #expect(build.adapters.map(\.tags) == [["team-a/a:v1"]])
        }
    }

    @Test func blobsByDigestNeedAManifestOfTheNamespace() async throws {
        try await withRegistry { client, seeded in
            let baseTensor = try seeded.store.resolve(try Reference(parsing: "team-a/base:v1")).manifest.tensors[0].digest
            for digest in seeded.teamABlobs + [baseTensor] {
                let (status, body) = try await Self.get(client, "blobs/\(digest.hex)", token: seeded.teamA)
                #expect(status == .ok && Digest(of: body) == digest, "team-a's blob \(digest.short)")
            }
            let absent = Digest(of: Array("nothing stored".utf8))
            let (_, absentBody) = try await Self.get(client, "blobs/\(absent.hex)", token: seeded.teamA)
            for digest in seeded.teamBOnlyBlobs {
                let (status, body) = try await Self.get(client, "blobs/\(digest.hex)", token: seeded.teamA)
                #expect(status == .notFound, "team-b's blob \(digest.short)")
                // The same answer as for a blob the store lacks, but for the digest in the message.
                let error = try RouterTest.error(in: body)
                let absentError = try RouterTest.error(in: absentBody)
                #expect(error.code == absentError.code)
                #expect(
                    error.message.replacingOccurrences(of: digest.hex, with: "")
                        == absentError.message.replacingOccurrences(of: absent.hex, with: ""))
                let (allowed, bytes) = try await Self.get(client, "blobs/\(digest.hex)", token: seeded.everything)
                #expect(allowed == .ok && Digest(of: bytes) == digest, "a token for * reads \(digest.short)")
            }
        }
    }

    @Test func digestReferencesAndBuildsStayInTheirNamespace() async throws {
        try await withRegistry { client, seeded in
            for path in [
                "show/\(seeded.adapterB)", "lineage/\(seeded.adapterB)", "stats/\(seeded.adapterB)",
                "manifests/\(seeded.adapterB)", "files/\(seeded.buildB)", "file/config.json?ref=\(seeded.buildB)",
            ] {
                #expect(try await Self.get(client, path, token: seeded.teamA).status == .notFound, "\(path)")
                #expect(try await Self.get(client, path, token: seeded.everything).status == .ok, "\(path)")
            }
            #expect(try await Self.get(client, "show/team-a/a@\(seeded.adapterB)", token: seeded.teamA).status == .notFound)
            #expect(try await Self.get(client, "show/\(seeded.adapterA)", token: seeded.teamA).status == .ok)
            #expect(try await Self.get(client, "manifests/\(seeded.buildA)", token: seeded.teamA).status == .ok)

            // Building from team-b's adapter would read it: refused, and nothing recorded.
            let auth: HTTPFields = [.authorization: "Bearer \(seeded.teamAPusher)", .contentType: "application/json"]
            for (base, adapter, status) in [
                ("team-a/base:v1", "team-b/b:v1", HTTPResponse.Status.forbidden),
                ("team-a/base:v1", seeded.adapterB.description, .notFound),
            ] {
                let request = RegistryAPI.BuildRequest(
                    tag: "team-a/stolen:v1", base: base, adapters: [.init(reference: adapter, weight: 1)], options: MergeOptions())
                try await client.execute(
                    uri: RegistryAPI.prefix + "/builds", method: .post, headers: auth,
                    body: ByteBuffer(bytes: try RegistryAPI.encoder().encode(request))
                ) { response in
                    #expect(response.status == status, "\(adapter)")
                }
            }
            #expect(try await Self.get(client, "files/team-a/base:v1+team-b/b:v1", token: seeded.teamAPusher).status == .forbidden)
            #expect(try seeded.store.list().map(\.repository) == Self.everyRepository)

            // An ad-hoc recipe of team-a's own inputs works, and so does downloading by its pinned digest.
            let files = try await Self.json(
                RegistryAPI.FileList.self, client, "files/team-a/base:v1+team-a/a:v1@0.5", token: seeded.teamAPusher)
            let name = try #require(files.files.first?.name)
            #expect(try await Self.get(client, "file/\(name)?ref=\(files.pinned)", token: seeded.teamA).status == .ok)
            #expect(try await Self.get(client, "show/\(files.digest)", token: seeded.teamA).status == .ok)
        }
    }

    /// A team-a pusher that knows team-b's digests cannot name team-b's blobs in a manifest (they count as
    /// missing), until it uploads their bytes for its repository; the blobs are still stored once.
    @Test func manifestsNameOnlyBlobsThePusherReadsOrUploaded() async throws {
        try await withRegistry { client, seeded in
            let stolen = try seeded.store.resolve(try Reference(parsing: "team-b/b:v1"))
            let json = try stolen.manifest.canonicalJSON()
            let auth: HTTPFields = [.authorization: "Bearer \(seeded.teamAPusher)", .contentType: "application/json"]
            let push = { () async throws -> (HTTPResponse.Status, Data) in
                try await client.execute(
                    uri: RegistryAPI.prefix + "/manifests/team-a/copy:v1", method: .put, headers: auth,
                    body: ByteBuffer(bytes: json)
                ) { response in (response.status, Data(buffer: response.body)) }
            }
            let (status, body) = try await push()
            #expect(status == .badRequest)
            #expect(try RouterTest.error(in: body).code == "MISSING_BLOBS")

            let onlyB = Set(seeded.teamBOnlyBlobs).intersection(stolen.manifest.blobDigests)
            let request = RegistryAPI.MissingBlobsRequest(repository: "team-a/copy", digests: Array(stolen.manifest.blobDigests))
            let missing = try await client.execute(
                uri: RegistryAPI.prefix + "/blobs/missing", method: .post, headers: auth,
                body: ByteBuffer(data: try RegistryAPI.encoder().encode(request))
            ) { response in try RegistryAPI.decoder().decode(RegistryAPI.MissingBlobsResponse.self, from: Data(buffer: response.body)) }
            let teamA = RepositoryVisibility(namespace: "team-a/*")
            #expect(!onlyB.isEmpty && onlyB.isSubset(of: missing.missing))
            #expect(try missing.missing.allSatisfy { try seeded.store.blobInfo($0, visibleTo: teamA) == nil }, "only what team-a cannot read")

            let blobCount = try seeded.store.blobs.allFiles().count
            for digest in missing.missing {
                let info = try #require(try seeded.store.blobInfo(digest))
                let bytes = try seeded.store.blobs.read(digest, codec: info.codec)
                let data = withExtendedLifetime(bytes) { Data(bytes.bytes) }
                let answer = try await client.execute(
                    uri: RegistryAPI.prefix + "/blobs/\(digest.hex)?repository=team-a/copy", method: .put, headers: auth,
                    body: ByteBuffer(data: data)
                ) { response in
                    (response.status, try RegistryAPI.decoder().decode(RegistryAPI.BlobResponse.self, from: Data(buffer: response.body)))
                }
                #expect(answer.0 == .created && answer.1.created, "answered as new: team-a must not learn team-b holds it")
            }
            #expect(try seeded.store.blobs.allFiles().count == blobCount, "the bytes were kept once")
            let (again, answer) = try await push()
            #expect(again == .ok, "the manifest existed, now tagged: \(String(decoding: answer, as: UTF8.self))")
            #expect(try seeded.store.resolve(try Reference(parsing: "team-a/copy:v1")).digest == stolen.digest)
        }
    }

    @Test func anAdapterForABaseThePusherCannotReadIsRefusedAsForNoBase() async throws {
        try await withRegistry { client, seeded in
            let hidden = try Reference(parsing: "team-b/other:v1")
            try seeded.store.push(Fixtures.url("base_bf16"), to: hidden)
            var manifest = try seeded.store.resolve(try Reference(parsing: "team-a/a:v1")).manifest
            let auth: HTTPFields = [.authorization: "Bearer \(seeded.teamAPusher)", .contentType: "application/json"]
            func push(base: Digest) async throws -> (HTTPResponse.Status, String) {
                manifest.base = base
                let json = try manifest.canonicalJSON()
                return try await client.execute(
                    uri: RegistryAPI.prefix + "/manifests/team-a/copy:v1", method: .put, headers: auth,
                    body: ByteBuffer(bytes: json)
                ) { response in (response.status, try RouterTest.error(in: Data(buffer: response.body)).code) }
            }
            let hiddenBase = try await push(base: try seeded.store.resolve(hidden).digest)
            let noBase = try await push(base: Digest(of: Data("no such base".utf8)))
            #expect(hiddenBase == noBase && noBase == (.notFound, "NOT_FOUND"))
            #expect(throws: StoreError.self) { try seeded.store.resolve(try Reference(parsing: "team-a/copy:v1")) }
        }
    }

    /// A build refused because its adapter was pushed for another model names that model by digest when
    /// the asker cannot read its repository, and is refused even when another namespace recorded the same
    /// recipe with permission: the refusal tells no more than a listing would.
    @Test func anAdapterForAHiddenModelIsRefusedWithoutNamingItsRepository() async throws {
        try await withRegistry { client, seeded in
            try await TemporaryDirectory.with { directory in
                let variant = directory.appending(path: "variant")
                try Fixtures.copy("base_fp32", to: variant, flippingFirstBitOf: "model.norm.weight")
                let hidden = try Reference(parsing: "team-b/tuned:v1")
                try seeded.store.push(variant, to: hidden)
                try seeded.store.push(
                    Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "team-a/tuned-lora:v1"),
                    options: PushOptions(base: hidden))
                // Another namespace recorded the same recipe, allowed: that tells team-a nothing either.
                try seeded.store.createBuild(
                    base: try Reference(parsing: "team-a/base:v1"), adapters: [(try Reference(parsing: "team-a/tuned-lora:v1"), 1)],
                    tag: try Reference(parsing: "team-b/hidden-bot:v1"), allowingOtherBase: true)
                let request = RegistryAPI.BuildRequest(
                    tag: "team-a/tuned-bot:v1", base: "team-a/base:v1",
                    adapters: [.init(reference: "team-a/tuned-lora:v1", weight: 1)], options: MergeOptions())
                let auth: HTTPFields = [.authorization: "Bearer \(seeded.teamAPusher)", .contentType: "application/json"]
                let (status, code, message) = try await client.execute(
                    uri: RegistryAPI.prefix + "/builds", method: .post, headers: auth,
                    body: ByteBuffer(bytes: try RegistryAPI.encoder().encode(request))
                ) { response in
                    let (code, message) = try RouterTest.error(in: Data(buffer: response.body))
                    return (response.status, code, message)
                }
                #expect(status == .badRequest && code == "OTHER_BASE")
                let tuned = try seeded.store.resolve(hidden).digest
                #expect(!message.contains("team-b") && message.contains(tuned.short), "\(message)")
                #expect(message.contains("team-a/base:v1"), "\(message)")
            }
        }
    }

    @Test func openReadsAreUnchanged() async throws {
        try await withRegistry(requireTokenForReads: false) { client, seeded in
            for token in [nil, seeded.teamA] {
                let list = try await Self.json([ListEntry].self, client, "list", token: token)
                #expect(list.map(\.repository) == Self.everyRepository)
                let stats = try await Self.json(StorageStats.self, client, "stats", token: token)
                #expect(stats.entries == (try seeded.store.stats().entries))
                let lineage = try await Self.json(Lineage.self, client, "lineage/team-a/base:v1", token: token)
                #expect(lineage.derivedAdapters.count == 2 && lineage.derivedBuilds.count == 2)
                #expect(lineage.subject.tags == ["team-a/base:v1", "team-b/base:v1"])
                for digest in seeded.teamBOnlyBlobs {
                    #expect(try await Self.get(client, "blobs/\(digest.hex)", token: token).status == .ok)
                }
                #expect(try await Self.get(client, "show/\(seeded.adapterB)", token: token).status == .ok)
            }
        }
    }
}
