import Foundation
import Hummingbird
import LoraStoreCore

/// Blobs by digest: which ones the server lacks, upload with digest verification, and download.
struct BlobController {
    let registry: Registry

    func addRoutes(to group: RouterGroup<RegistryRequestContext>) {
        group.post("missing", use: missing)
        group.put(":digest", use: upload)
        group.get(":digest", use: download)
    }

    /// `POST missing`: of the digests sent, those the store lacks.
    @Sendable func missing(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        // Whether the token may push at all is known before the body is read; where to, after.
        try registry.authorizer.require(.push, on: nil, context: context)
        let body = try await registry.decode(RegistryAPI.MissingBlobsRequest.self, from: request)
        try Reference.validate(name: body.repository, in: body.repository)
        try registry.authorizer.require(.push, on: body.repository, context: context)
        let visibility = try registry.authorizer.readableRepositories(context: context)
        let missing = try await registry.blocking {
            try $0.missingBlobs(among: body.digests, for: body.repository, visibleTo: visibility)
        }
        return try registry.json(RegistryAPI.MissingBlobsResponse(missing: missing))
    }

    /// `PUT {digest}?repository=NAME`: the body is the blob's bytes; stored only when complete and hashing to
    /// the digest. The token must allow pushing to NAME. A blob the pusher could not name before (see
    /// `missing`) is answered as created even where the store already held its bytes, which it keeps once:
    /// the answer must not tell a namespace-limited pusher what other namespaces store.
    @Sendable func upload(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        guard let repository = request.uri.queryParameters.get("repository") else {
            throw RegistryError.badRequest("name the repository the blob is pushed for: ?repository=NAME")
        }
        try Reference.validate(name: repository, in: repository)
        try registry.authorizer.require(.push, on: repository, context: context)
        let digest = try Self.digest(in: context)
        let visibility = try registry.authorizer.readableRepositories(context: context)
        // Open to every repository, "created" is the store's own answer; only a limited pusher needs this look.
        let wasMissing = try await visibility.isAll ? false : registry.blocking {
            try !$0.missingBlobs(among: [digest], for: repository, visibleTo: visibility).isEmpty
        }
        let encoding = try Self.encoding(of: request)
        let expectedSize = request.headers[.contentLength].flatMap { Int($0) }
        try BlobUpload.checkAnnouncedSize(expectedSize, limit: registry.configuration.maxBlobSize, digest: digest)
        // A collection running now would sweep the upload's spool file, or refuse the blob once every byte
        // had arrived: wait for it, or answer busy, before the spool file exists; for at most half the idle
        // timeout, which a connection whose body is not being read counts against. Held until the blob is
        // stored, so that none starts meanwhile.
        let idleTimeout = registry.configuration.idleTimeout
        let hold = try await registry.blocking { try $0.holdMaintenance(atMost: idleTimeout / 2) }
        defer { hold.unlock() }
        let upload = try BlobUpload(
            into: registry.store, digest: digest, repository: repository, expectedSize: expectedSize,
            limit: registry.configuration.maxBlobSize, encoding: encoding)
        var body = request.body.makeAsyncIterator()
        while true {
            let buffer: ByteBuffer?
            do {
                buffer = try await body.next()
            } catch {
                // The body stream fails when the client hangs up or stalls past the idle timeout.
                upload.cancel()
                throw ReceiveError.truncated(digest: digest, expected: expectedSize, received: upload.received)
            }
            guard let buffer else { break }
            do {
                try buffer.withUnsafeReadableBytes { try upload.append($0) }
            } catch {
                upload.cancel()
                throw error
            }
        }
        let stored = try await registry.workers.run { try upload.finish() }
        registry.metrics.countUpload(stored.created ? stored.logicalSize : 0)
        let created = stored.created || wasMissing
        return try registry.json(
            RegistryAPI.BlobResponse(digest: digest, size: stored.logicalSize, created: created),
            status: created ? .created : .ok)
    }

    /// `GET {digest}`: the blob's logical bytes, with `Range`. A caller limited to some repositories gets only
    /// blobs their manifests reference; any other answers 404, as a missing blob does, so that digests of
    /// other namespaces cannot be probed.
    @Sendable func download(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let visibility = try registry.authorizer.readableRepositories(context: context)
        let digest = try Self.digest(in: context)
        guard let info = try await registry.blocking({ try $0.blobInfo(digest, visibleTo: visibility) }) else {
            throw RegistryError.notFound("blob \(digest) is not in the store")
        }
        let file = ServedFile(name: digest.hex, size: info.logicalSize, digest: digest, source: .blob(digest))
        return try registry.files.response(for: file, digest: digest, request: request)
    }

    /// How an upload asks its blob to be stored: `float=BF16|F16|F32` for the exponent codec, `compress=W` for
    /// byte-grouped zlib over elements of W bytes (1–8), else raw; compressed only where that saves space.
    /// Asking for both, or for anything else, is a bad request.
    private static func encoding(of request: Request) throws -> BlobEncoding {
        let parameters = request.uri.queryParameters
        let float = parameters.get("float")
        let compress = parameters.get("compress")
        if float != nil, compress != nil {
            throw RegistryError.badRequest("ask for float=T or compress=W, not both")
        }
        if let name = float {
            guard let layout = DType(rawValue: name).flatMap(FloatLayout.init) else {
                throw RegistryError.badRequest("float=\(name): choose BF16, F16 or F32")
            }
            return .floatingPoint(layout)
        }
        guard let compress else { return .raw }
        guard let width = Int(compress), (1...8).contains(width) else {
            throw RegistryError.badRequest("compress=\(compress): the element width is 1 to 8 bytes")
        }
        return .compressed(elementWidth: width)
    }

    private static func digest(in context: RegistryRequestContext) throws -> Digest {
        let text = try context.parameters.require("digest")
        guard let digest = Digest(text) else {
            throw RegistryError(.badRequest, code: "INVALID_DIGEST", message: "\"\(text)\" is not a sha256 digest")
        }
        return digest
    }
}
