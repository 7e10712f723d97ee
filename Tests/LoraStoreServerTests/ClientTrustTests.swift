import Foundation
import Hummingbird
import Logging
import LoraStoreClient
@testable import LoraStoreCore
import Synchronization
import Testing

/// The client against a fake server: one that answers what no lorastore registry would (the client refuses
/// with an error naming the problem and writes nothing at the destination), and one whose store changes
/// between the client's requests.
@Suite struct ClientTrustTests {
    /// A registry collects a blob (garbage collection, a cache eviction) after telling the client it had it:
    /// the manifest is refused as naming missing blobs, and the client asks again, uploads what is missing
    /// now and records the manifest.
    @Test func aPushSendsAgainWhatTheRegistryCollectedMeanwhile() async throws {
        struct Seen { var missingQueries = 0, manifests = 0, uploads: [String] = [] }
        let seen = Mutex(Seen())
        let router = Router()
        router.post("/api/v1/blobs/missing") { request, context in
            let asked = try await request.decode(as: RegistryAPI.MissingBlobsRequest.self, context: context)
            let first = seen.withLock { seen in
                seen.missingQueries += 1
                return seen.missingQueries == 1
            }
            return try Self.json(RegistryAPI.MissingBlobsResponse(missing: first ? [] : asked.digests))
        }
        router.put("/api/v1/blobs/:digest") { request, context in
            let hex = try context.parameters.require("digest")
            let body = try await request.body.collect(upTo: 1 << 30)
            seen.withLock { $0.uploads.append(hex) }
            return try Self.json(RegistryAPI.BlobResponse(digest: Digest(of: body.readableBytesView), size: body.readableBytes, created: true))
        }
        router.put("/api/v1/manifests/**") { request, _ in
            let json = try await request.body.collect(upTo: 1 << 30)
            let attempt = seen.withLock { seen in
                seen.manifests += 1
                return seen.manifests
            }
            guard attempt > 1 else {
                let error = #"{"error": {"code": "MISSING_BLOBS", "message": "the manifest names blobs the store does not have"}}"#
                return Response(
                    status: .badRequest, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: error)))
            }
            let result = PushResult(
                reference: "acme/base:v1", digest: Digest(of: json.readableBytesView), kind: .base, previousDigest: nil,
                tensorCount: 0, fileCount: 0, logicalBytes: 0, newBlobs: 0, newLogicalBytes: 0, newStoredBytes: 0,
                reusedBytes: 0, manifestExisted: false, skippedFiles: [])
            return try Self.json(result)
        }
        try await Self.serving(router) { endpoint in
            let folder = Fixtures.url("base_fp32")
            let package = try PushPackage(path: folder, kind: .base, base: nil, baseModelType: nil, progress: nil)
            let result = try await RegistryClient(endpoint: endpoint, token: nil).push(folder, to: try Reference(parsing: "acme/base:v1"))
            let final = seen.withLock { $0 }
            #expect(final.missingQueries == 2 && final.manifests == 2)
            #expect(Set(final.uploads) == Set(package.blobDigests.map(\.hex)))
            #expect(result.newBlobs == package.blobDigests.count)
        }
    }

    /// A listing whose sizes are negative or overflow when summed used to trap in the client.
    @Test(arguments: [[-5], [Int.max, 1]])
    func listedSizesNoFileCanHaveAreRefused(sizes: [Int]) async throws {
        let digest = Digest(of: Array("listed".utf8))
        let list = RegistryAPI.FileList(
            digest: digest, kind: .base, pinned: "acme/x@\(digest)",
            files: sizes.enumerated().map { .init(name: "file-\($0.offset)", size: $0.element, digest: digest) })
        let router = Router()
        router.get("/api/v1/files/**") { _, _ in try Self.json(list) }
        try await Self.serving(router) { endpoint in
            try await TemporaryDirectory.with { directory in
                let destination = directory.appending(path: "pulled")
                await #expect {
                    try await RegistryClient(endpoint: endpoint, token: nil).pull("acme/x", to: destination)
                } throws: { error in
                    "\(error)".contains("impossible size")
                }
                #expect(!FileManager.default.fileExists(atPath: destination.path))
            }
        }
    }

    /// An answer that breaks off after its head (the server stopped mid-answer) is a transport error naming
    /// the URL and saying to run the command again, for a JSON answer and for a file being downloaded.
    @Test func anAnswerCutShortIsATransportErrorToRetry() async throws {
        struct Stopped: Error {}
        let digest = Digest(of: Array("cut".utf8))
        let list = RegistryAPI.FileList(
            digest: digest, kind: .base, pinned: "acme/x@\(digest)", files: [.init(name: "file-0", size: 100_000, digest: digest)])
        let cut = { @Sendable () -> Response in
            Response(
                status: .ok, headers: [.contentLength: "100000"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "{\"entries\": ["))
                    throw Stopped()
                })
        }
        let router = Router()
        router.get("/api/v1/stats") { _, _ in cut() }
        router.get("/api/v1/files/**") { _, _ in try Self.json(list) }
        router.get("/api/v1/file/**") { _, _ in cut() }
        try await Self.serving(router) { endpoint in
            let client = RegistryClient(endpoint: endpoint, token: nil)
            let retry: (any Error) -> Bool = { error in
                guard case RegistryClientError.transport(let url, let reason) = error else { return false }
                return url.hasPrefix(endpoint.absoluteString + "/api/v1/") && reason.contains("run the command again")
            }
            await #expect(performing: { try await client.stats() }, throws: retry)
            try await TemporaryDirectory.with { directory in
                await #expect(performing: { try await client.pull("acme/x", to: directory.appending(path: "pulled")) }, throws: retry)
            }
        }
    }

    /// A 200 response with `value` as the registry encodes it.
    private static func json(_ value: some Encodable) throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try RegistryAPI.encoder().encode(value))))
    }

    /// Runs `body` with the URL of `router` served on 127.0.0.1 and a free port.
    private static func serving(_ router: Router<BasicRequestContext>, _ body: @Sendable (URL) async throws -> Void) async throws {
        var logger = Logger(label: "lorastore.test-fake-registry")
        logger.logLevel = .error
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        try await RunningServer.with(app, ports: ports, logger: logger) { port in
            guard let endpoint = URL(string: "http://127.0.0.1:\(port)") else { throw CancellationError() }
            try await body(endpoint)
        }
    }
}
