import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import LoraStoreCore
import LoraStoreServer
import Testing

/// What the registry accepts from a pusher besides blobs: manifests it must check (it cannot trust the
/// client's validation), and the operational routes.
@Suite struct ManifestReceiveTests {
    /// The manifest of `acme/a` in the store ``RouterTest`` makes.
    private static func adapterManifest(_ store: Store) throws -> Manifest {
        try store.resolve(try Reference(parsing: "acme/a")).manifest
    }

    /// Each malformed manifest is refused with 400 INVALID_MANIFEST and tags nothing.
    @Test func malformedManifestsAreRefusedAndTagNothing() async throws {
        try await RouterTest.with { client, store, admin in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let adapter = try Self.adapterManifest(store)
            var wrongVersion = adapter
            wrongVersion.schemaVersion = 99
            var build = adapter
            build.kind = .build
            var wrongSize = adapter
            wrongSize.tensors[0].size += 1
            var baseOfABase = try store.resolve(try Reference(parsing: "micro/base:fp32")).manifest
            baseOfABase.base = Digest(of: Array("elsewhere".utf8))
            var quantizedAdapter = adapter
            quantizedAdapter.quantization = [:]
            var fileTwice = adapter
            fileTwice.files.append(adapter.files[0])
            var tensorFileNamedLikeAFile = adapter
            for index in tensorFileNamedLikeAFile.tensors.indices { tensorFileNamedLikeAFile.tensors[index].file = adapter.files[0].path }
            var splitTensorFile = adapter
            splitTensorFile.tensors[1].file = "elsewhere.safetensors"
            var wrongFileSize = adapter
            wrongFileSize.files[0].size += 1
            var overflowingShape = adapter
            overflowingShape.tensors[0].shape = [Int.max / 2, 4]
            overflowingShape.tensors[0].size = 0
            let pretty = try JSONSerialization.data(
                withJSONObject: try JSONSerialization.jsonObject(with: adapter.canonicalJSON()), options: [.prettyPrinted, .sortedKeys])
            let cases: [(String, Data)] = [
                ("not canonical", pretty),
                ("another schema version", try wrongVersion.canonicalJSON()),
                ("a build", try build.canonicalJSON()),
                ("bytes that do not fit the shape", try wrongSize.canonicalJSON()),
                ("a base naming a base", try baseOfABase.canonicalJSON()),
                ("a quantized adapter", try quantizedAdapter.canonicalJSON()),
                ("a file listed twice", try fileTwice.canonicalJSON()),
                ("a tensor file named like a small file", try tensorFileNamedLikeAFile.canonicalJSON()),
                ("a tensor file split in two runs", try splitTensorFile.canonicalJSON()),
                ("a shape whose size overflows", try overflowingShape.canonicalJSON()),
                ("a file size its stored blob does not have", try wrongFileSize.canonicalJSON()),
                ("not JSON", Data("{".utf8)),
            ]
            let before = try store.list()
            for (label, body) in cases {
                try await client.execute(
                    uri: "/api/v1/manifests/acme/received:v1", method: .put, headers: auth, body: ByteBuffer(bytes: body)
                ) { response in
                    #expect(response.status == .badRequest, "\(label)")
                    #expect(RouterTest.code(of: response) == "INVALID_MANIFEST", "\(label): \(String(buffer: response.body))")
                }
            }
            try await client.execute(
                uri: "/api/v1/manifests/acme/received@\(Digest(of: try adapter.canonicalJSON()))", method: .put, headers: auth,
                body: ByteBuffer(bytes: try adapter.canonicalJSON())
            ) { response in
                #expect(response.status == .badRequest, "a push names a tag, not a digest")
            }
            #expect(try store.list() == before)
        }
    }

    /// Blob uploads name a well-formed digest and the repository they are for.
    @Test func blobUploadsNeedADigestAndARepository() async throws {
        try await RouterTest.with { client, store, admin in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)"]
            let bytes = ByteBuffer(bytes: Array("tensor".utf8))
            let files = try store.blobs.allFiles().count
            try await client.execute(uri: "/api/v1/blobs/not-a-digest?repository=acme/x", method: .put, headers: auth, body: bytes) { response in
                #expect(response.status == .badRequest)
                #expect(RouterTest.code(of: response) == "INVALID_DIGEST")
            }
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: Array("tensor".utf8)).hex)", method: .put, headers: auth, body: bytes
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("repository"))
            }
            let digest = Digest(of: Array("tensor".utf8)).hex
            for query in ["compress=9", "compress=two", "float=F64", "float=F32&compress=4"] {
                try await client.execute(
                    uri: "/api/v1/blobs/\(digest)?repository=acme/x&\(query)", method: .put, headers: auth, body: bytes
                ) { response in
                    #expect(response.status == .badRequest, "\(query)")
                }
            }
            #expect(try store.blobs.allFiles().count == files)
        }
    }

    /// A revoked token is refused at once; revoking an unknown one says so.
    @Test func aRevokedTokenIsRefusedAtOnce() async throws {
        try await RouterTest.with(RegistryConfiguration(requireTokenForReads: true, workerThreads: 2)) { client, store, _ in
            let reader = try store.createToken(scope: .read)
            let auth: HTTPFields = [.authorization: "Bearer \(reader.secret)"]
            try await client.execute(uri: "/api/v1/list", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
            }
            try store.revokeToken(id: reader.token.id)
            try await client.execute(uri: "/api/v1/list", method: .get, headers: auth) { response in
                #expect(response.status == .unauthorized)
            }
            #expect(throws: StoreError.invalidInput(path: "token \(reader.token.id)", reason: "is already revoked")) {
                try store.revokeToken(id: reader.token.id)
            }
            #expect(throws: StoreError.notFound("token nope")) { try store.revokeToken(id: "nope") }
        }
    }

    /// Credentials of another scheme (a proxy's `Basic` ones) make a request anonymous, as a bearer secret
    /// that is not a lorastore one does: open routes answer, pushes still need a lorastore token.
    @Test func otherCredentialsAreAnonymous() async throws {
        try await RouterTest.with { client, _, _ in
            let basic: HTTPFields = [.authorization: "Basic dXNlcjpwYXNz"]
            try await client.execute(uri: "/health", method: .get, headers: basic) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/list", method: .get, headers: basic) { response in
                #expect(response.status == .ok)
            }
            let bytes = Array("pushed with a proxy's credentials".utf8)
            try await client.execute(
                uri: "/api/v1/blobs/\(Digest(of: bytes).hex)?repository=acme/x", method: .put, headers: basic,
                body: ByteBuffer(bytes: bytes)
            ) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    /// `/health` answers while the store is readable; `/metrics` exposes the registry's counters.
    @Test func healthAndMetricsAnswer() async throws {
        try await RouterTest.with { client, _, admin in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/list", method: .get, headers: [.authorization: "Bearer \(admin)"]) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("lorastore_"), "\(String(buffer: response.body).prefix(300))")
            }
        }
    }
}
