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
        try RegistryAPI.decoder().decode(type, from: try await body(of: request))
    }

    /// A request body of at most the configured size: 413 above it (told by `Content-Length` before
    /// anything is read), 400 when it cannot be read whole.
    func body(of request: Request) async throws -> Data {
        let limit = configuration.maxRequestSize
        let tooLarge = RegistryError(
            .contentTooLarge, code: "TOO_LARGE", message: "the request body is larger than the server's limit of \(limit) bytes")
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw tooLarge }
        var request = request
        do {
            return Data(buffer: try await request.collectBody(upTo: limit))
        } catch {
            // A body without a length that runs past the limit, or one cut short.
            throw RegistryError(
                .badRequest, code: "BAD_REQUEST",
                message: "the request body could not be read whole (over \(limit) bytes, or the connection ended early)")
        }
    }

    /// The reference in the rest of the path (`/.../acme/support-bot:v2`).
    static func reference(in context: RegistryRequestContext) throws -> Reference {
        try Reference(parsing: try path(in: context))
    }

    /// The rest of the path (`**`), each segment percent-decoded as clients encode it (a file called
    /// `special tokens.json` arrives as `special%20tokens.json`); callers validate what it names.
    static func path(in context: RegistryRequestContext) throws -> String {
        try context.parameters.getCatchAll().map { segment in
            guard let decoded = segment.removingPercentEncoding else {
                throw RegistryError.badRequest("the path segment \"\(segment)\" is not valid percent-encoding")
            }
            return decoded
        }.joined(separator: "/")
    }
}
