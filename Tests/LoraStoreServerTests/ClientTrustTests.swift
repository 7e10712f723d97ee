import Foundation
import Hummingbird
import Logging
import LoraStoreClient
import LoraStoreCore
import Testing

/// The client against a server that answers what no lorastore registry would: the client refuses with an
/// error naming the problem and writes nothing at the destination.
@Suite struct ClientTrustTests {
    /// A listing whose sizes are negative or overflow when summed used to trap in the client.
    @Test(arguments: [[-5], [Int.max, 1]])
    func listedSizesNoFileCanHaveAreRefused(sizes: [Int]) async throws {
        let digest = Digest(of: Array("listed".utf8))
        let list = RegistryAPI.FileList(
            digest: digest, kind: .base, pinned: "acme/x@\(digest)",
            files: sizes.enumerated().map { .init(name: "file-\($0.offset)", size: $0.element, digest: digest) })
        let body = try RegistryAPI.encoder().encode(list)
        let router = Router()
        router.get("/api/v1/files/**") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
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
