import Hummingbird
import LoraStoreCore

/// `GET /health` (is the server up and its store readable) and `GET /metrics` (Prometheus text format).
struct HealthController {
    let registry: Registry

    func addRoutes(to router: Router<RegistryRequestContext>) {
        router.get("health", use: health)
        router.get("metrics", use: metrics)
    }

    @Sendable func health(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        _ = try await registry.blocking { try $0.index.appliedMigrations() }
        return try registry.json(["status": "ok", "version": LoraStoreVersion.current])
    }

    @Sendable func metrics(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(bytes: registry.metrics.exposition())))
    }
}
