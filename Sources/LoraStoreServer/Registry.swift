import Foundation
import Hummingbird
import LoraStoreCore

/// What the controllers share: the store, the worker threads, the model cache, authorization and metrics.
struct Registry: Sendable {
    let store: Store
    let configuration: RegistryConfiguration
    let workers: Workers
    let models: ModelCache
    let authorizer: Authorizer
    let files: FileResponder
    let metrics: RegistryMetrics

    /// Runs blocking store work on a worker thread.
    func blocking<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
        let store = store
        return try await workers.run { try body(store) }
    }

    /// A JSON answer encoded as both sides of the API expect.
    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try RegistryAPI.encoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Decodes a JSON request body of at most the configured size.
    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: configuration.maxRequestSize)
        return try RegistryAPI.decoder().decode(type, from: Data(buffer: buffer))
    }

    /// The reference in the rest of the path (`/.../acme/support-bot:v2`).
    static func reference(in context: RegistryRequestContext) throws -> Reference {
        try Reference(parsing: context.parameters.getCatchAll().joined(separator: "/"))
    }
}
