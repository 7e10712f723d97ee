import AsyncHTTPClient
import Foundation
import LoraStoreCore
import NIOCore
import NIOHTTP1

/// A client of a lorastore registry server (see API.md): the requests behind `push`, `pull`, `ls`, `show`,
/// `lineage`, `stats` and `build create` with `--remote`.
public struct RegistryClient: Sendable {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    public let endpoint: URL
    /// The bearer token sent with every request, if any.
    public let token: String?
    private let http: HTTPClient

    /// A client of the server at `endpoint`, sending `token` (if any) as `Authorization: Bearer`.
    public init(endpoint: URL, token: String? = nil, httpClient: HTTPClient = Self.defaultHTTPClient) {
        self.endpoint = endpoint
        self.token = token
        http = httpClient
    }

    /// The HTTP client used unless another is given, for the life of the process: AsyncHTTPClient's shared
    /// configuration (up to 90 s to connect, or to wait for a pooled connection while other requests use
    /// them), except that a refused connection is not retried (a mistyped or stopped registry is reported at
    /// once, not after 90 s of retries), and that the server may be silent for up to 10 minutes at a time (it
    /// merges a build, or hashes a base's files, before it answers). No request has an overall deadline, so
    /// an upload or download of any size finishes as long as bytes keep moving.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.read = .minutes(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    // MARK: Queries

    /// Every tag, optionally of one kind.
    public func list(kind: ManifestKind? = nil) async throws -> [ListEntry] {
        try await json([ListEntry].self, path: "list", query: kind.map { ["kind": $0.rawValue] } ?? [:])
    }

    /// What `show` prints about a manifest.
    public func describe(_ reference: Reference) async throws -> ManifestDescription {
        try await json(ManifestDescription.self, path: "show/\(reference)")
    }

    /// The lineage of a manifest.
    public func lineage(_ reference: Reference) async throws -> Lineage {
        try await json(Lineage.self, path: "lineage/\(reference)")
    }

    /// The server's storage accounting, optionally with one manifest's entry only.
    public func stats(for reference: Reference? = nil) async throws -> StorageStats {
        try await json(StorageStats.self, path: reference.map { "stats/\($0)" } ?? "stats")
    }

    /// Records and tags a build on the server; nothing is merged until it is pulled. The server refuses an
    /// adapter pushed against another model than `base` unless `allowingOtherBase`.
    @discardableResult
    public func createBuild(
        tag: Reference, base: Reference, adapters: [(reference: Reference, weight: Double)], options: MergeOptions = MergeOptions(),
        allowingOtherBase: Bool = false
    ) async throws -> Digest {
        let request = RegistryAPI.BuildRequest(
            tag: tag.description, base: base.description,
            adapters: adapters.map { .init(reference: $0.reference.description, weight: $0.weight) }, options: options,
            allowOtherBase: allowingOtherBase ? true : nil)
        return try await json(
            RegistryAPI.BuildResponse.self, path: "builds", method: .POST, body: try RegistryAPI.encoder().encode(request)
        ).digest
    }

    /// The manifest a reference names, with its digest.
    public func manifest(_ reference: Reference) async throws -> (digest: Digest, manifest: Manifest) {
        let (response, body) = try await send(path: "manifests/\(reference)")
        let data = Data(body.readableBytesView)
        guard let digest = response.headers.first(name: "Lorastore-Digest").flatMap({ Digest($0) }), Digest(of: data) == digest
        else { throw RegistryClientError.invalidResponse("the manifest of \(reference) does not match its digest") }
        do {
            return (digest, try Manifest(json: data))
        } catch let error as DecodingError {
            throw RegistryClientError.invalidResponse("the manifest of \(reference) is not one this lorastore reads: \(error.explanation)")
        }
    }

    /// The files of a base, adapter or build (which the server materializes first); `text` may be an
    /// ad-hoc recipe `BASE+ADAPTER[@WEIGHT]+...`.
    public func files(of text: String) async throws -> RegistryAPI.FileList {
        try await retryingWhileBusy { try await json(RegistryAPI.FileList.self, path: "files/\(text)") }
    }

    /// Runs `body` again while the registry answers 503 `BUSY` (garbage collection or a repair held its
    /// store for longer than the registry waits for one, API.md), after pauses of 1, 2, 4, 8 and 16 s and
    /// then 30 s, ``busyRetries`` times in all: about two minutes of pauses, besides each attempt's own wait
    /// on the server. Then the last answer is thrown.
    func retryingWhileBusy<T>(_ body: () async throws -> T) async throws -> T {
        var pause = Duration.seconds(1)
        for _ in 0..<Self.busyRetries {
            do {
                return try await body()
            } catch RegistryClientError.server(503, "BUSY", _) {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(30))
            }
        }
        return try await body()
    }

    /// How many times a request answered `BUSY` is sent again (``retryingWhileBusy(_:)``).
    static let busyRetries = 8

    // MARK: Requests

    /// Sends a request to `/api/v1/PATH` and decodes a JSON answer.
    func json<T: Decodable>(
        _ type: T.Type, path: String, query: [String: String] = [:], method: HTTPMethod = .GET, body: Data? = nil
    ) async throws -> T {
        let (_, buffer) = try await send(path: path, query: query, method: method, body: body.map { .bytes(ByteBuffer(bytes: $0)) })
        do {
            return try RegistryAPI.decoder().decode(type, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw RegistryClientError.invalidResponse("the answer to \(path) is not the JSON expected: \(error.explanation)")
        }
    }

    /// Sends a request to `/api/v1/PATH`, returning the answer and its whole body; error answers throw.
    func send(
        path: String, query: [String: String] = [:], method: HTTPMethod = .GET, body: HTTPClientRequest.Body? = nil,
        headers: [(String, String)] = [], limit: Int = 256 << 20
    ) async throws -> (HTTPClientResponse, ByteBuffer) {
        let response = try await execute(path: path, query: query, method: method, body: body, headers: headers)
        let buffer = try await readingAnswer(to: path) { try await response.body.collect(upTo: limit) }
        try Self.check(response, body: buffer)
        return (response, buffer)
    }

    /// Sends a request to `/api/v1/PATH` and returns the answer with its body unread.
    func execute(
        path: String, query: [String: String] = [:], method: HTTPMethod = .GET, body: HTTPClientRequest.Body? = nil,
        headers: [(String, String)] = []
    ) async throws -> HTTPClientResponse {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)
        let basePath = components?.path.hasSuffix("/") == true ? String(components?.path.dropLast() ?? "") : components?.path ?? ""
        components?.percentEncodedPath = basePath + RegistryAPI.prefix + "/" + Self.encodePath(path)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let url = components?.url else { throw RegistryClientError.invalidResponse("cannot make a URL of \(endpoint) and \(path)") }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        do {
            return try await http.execute(request, deadline: .distantFuture)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw RegistryClientError.transport(url: url.absoluteString, reason: Self.reason(error))
        }
    }

    /// Runs `body`, which reads the answer to a request to `/api/v1/PATH`, reporting a failure of the
    /// connection as ``execute(path:query:method:body:headers:)`` does: an answer can break off after its head.
    func readingAnswer<Result>(to path: String, _ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error where error is IOError || error is HTTPParserError || error is HTTPClientError {
            let base = endpoint.absoluteString.hasSuffix("/") ? String(endpoint.absoluteString.dropLast()) : endpoint.absoluteString
            throw RegistryClientError.transport(url: base + RegistryAPI.prefix + "/" + path, reason: Self.reason(error))
        }
    }

    /// What went wrong on the way, for people.
    private static func reason(_ error: any Error) -> String {
        let resume = "; run the command again: pushes and pulls continue where they stopped"
        if let error = error as? HTTPClientError {
            if error == .connectTimeout || error == .getConnectionFromPoolTimeout { return "could not connect within 90 s" }
            if error == .readTimeout { return "the server sent nothing for 10 minutes" + resume }
            if error == .remoteConnectionClosed { return "the server closed the connection" + resume }
        }
        if let error = error as? IOError, error.errnoCode == ECONNREFUSED {
            return "connection refused (is a server listening there?)"
        }
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            return "the connection was reset (the server stopped, or something between cut it)" + resume
        }
        if let error = error as? HTTPParserError, error == .invalidEOFState {
            return "the server closed the connection in the middle of an answer" + resume
        }
        // BoringSSL's answer to plain HTTP where it expected a TLS record (`lorastore serve` speaks HTTP);
        // matched by text, as NIOSSL's error type is not this module's dependency.
        if "\(error)".contains("WRONG_VERSION_NUMBER") {
            return "the server did not answer in TLS (lorastore serve speaks plain HTTP: use an http:// URL, or a TLS proxy in front)"
        }
        return "\(error)"
    }

    /// Throws the server's error for a 4xx or 5xx answer.
    static func check(_ response: HTTPClientResponse, body: ByteBuffer) throws {
        guard response.status.code >= 400 else { return }
        struct ErrorBody: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        let detail = try? JSONDecoder().decode(ErrorBody.self, from: Data(body.readableBytesView)).error
        throw RegistryClientError.server(
            status: Int(response.status.code), code: detail?.code ?? "HTTP_\(response.status.code)",
            message: detail?.message ?? response.status.reasonPhrase)
    }

    /// Percent-encodes a path, keeping `/`, `:`, `@` and `+` (which references use) as they are.
    private static func encodePath(_ path: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "/:@+-._~")
        return path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
    }
}
