import Foundation
import LoraStoreClient
import LoraStoreCore
import LoraStoreServer
import Logging

/// A registry server on 127.0.0.1 and a free port over a fresh store, for one test.
struct TestRegistry: Sendable {
    let directory: URL
    let store: Store
    let metrics: RegistryMetrics
    let endpoint: URL
    /// A token allowed everything (push and read on `*`).
    let adminToken: String

    /// A client of the server with `token` (default: the admin token; pass nil for none).
    func client(token: String?? = .none) -> RegistryClient {
        RegistryClient(endpoint: endpoint, token: token ?? adminToken)
    }

    /// Requests the server has answered with a 5xx status so far (503 BUSY in the tests that lock the store).
    var serverErrorAnswers: Int {
        let text = metrics.registry.emitToString()
        return text.split(separator: "\n").filter { $0.hasPrefix("lorastore_http_requests_total{") && $0.contains("status=\"5xx\"") }
            .compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
    }

    /// Bytes the server has sent as files and blobs so far.
    var downloadedBytes: Int {
        let text = metrics.registry.emitToString()
        let line = text.split(separator: "\n").first { $0.hasPrefix("lorastore_download_bytes_total ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Runs `body` with a live server, its store opened with `maintenanceWait` (``Store/maintenanceWait``);
    /// the server stops when it returns.
    static func with<T: Sendable>(
        _ configuration: RegistryConfiguration = RegistryConfiguration(), maintenanceWait: Duration? = nil,
        _ body: @Sendable (TestRegistry) async throws -> T
    ) async throws -> T {
        try await TemporaryDirectory.with { directory in
            let store = try Store(root: directory.appending(path: "server-store"), maintenanceWait: maintenanceWait)
            let admin = try store.createToken(scope: .admin)
            var configuration = configuration
            configuration.host = "127.0.0.1"
            configuration.port = 0
            configuration.workerThreads = 4
            let metrics = RegistryMetrics()
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            var logger = Logger(label: "lorastore.test-registry")
            logger.logLevel = .error
            let app = buildApplication(
                store: store, configuration: configuration, metrics: metrics, logger: logger,
                onServerRunning: { port in continuation.yield(port) })
            return try await RunningServer.with(app, ports: ports, logger: logger) { port in
                try await body(
                    TestRegistry(
                        directory: directory, store: store, metrics: metrics,
                        endpoint: URL(string: "http://127.0.0.1:\(port)")!, adminToken: admin.secret))
            }
        }
    }

    /// Pushes the fp32 micro base as `micro/base:fp32`, adapters a and b as `acme/a` and `acme/b`, and
    /// records the build `acme/merged:v1` = a@0.7 + b@0.3, through `client`.
    static func seed(_ client: RegistryClient) async throws {
        try await client.push(Fixtures.url("base_fp32"), to: try Reference(parsing: "micro/base:fp32"))
        let base = try Reference(parsing: "micro/base:fp32")
        try await client.push(
            Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"), options: PushOptions(base: base))
        try await client.push(
            Fixtures.url("adapters/b_r16_all_rslora"), to: try Reference(parsing: "acme/b"), options: PushOptions(base: base))
        try await client.createBuild(
            tag: try Reference(parsing: "acme/merged:v1"), base: base,
            adapters: [(try Reference(parsing: "acme/a"), 0.7), (try Reference(parsing: "acme/b"), 0.3)])
    }

    /// The same base, adapters and build in a local store.
    static func seed(_ store: Store) throws {
        let base = try Reference(parsing: "micro/base:fp32")
        try store.push(Fixtures.url("base_fp32"), to: base)
        try store.push(Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"), options: PushOptions(base: base))
        try store.push(
            Fixtures.url("adapters/b_r16_all_rslora"), to: try Reference(parsing: "acme/b"), options: PushOptions(base: base))
        try store.createBuild(
            base: base, adapters: [(try Reference(parsing: "acme/a"), 0.7), (try Reference(parsing: "acme/b"), 0.3)],
            tag: try Reference(parsing: "acme/merged:v1"))
    }
}
