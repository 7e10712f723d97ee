import Foundation
import Hummingbird
import LoraStoreCore

/// Manifests by reference: push (record and tag a manifest whose blobs were uploaded) and read.
struct ManifestController {
    let registry: Registry

    func addRoutes(to group: RouterGroup<RegistryRequestContext>) {
        group.put("manifests/**", use: push)
        group.get("manifests/**", use: read)
        group.get("bases", use: base)
    }

    /// `PUT manifests/NAME:TAG`: the body is the manifest's canonical JSON.
    @Sendable func push(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        try registry.authorizer.require(.push, on: reference.repository, context: context)
        let visibility = try registry.authorizer.readableRepositories(context: context)
        let body = try await registry.body(of: request)
        let result = try await registry.blocking { try $0.receiveManifest(body, tag: reference, visibleTo: visibility) }
        return try registry.json(result, status: result.manifestExisted ? .ok : .created)
    }

    /// `GET manifests/REF`: the manifest's canonical JSON; its digest in `Lorastore-Digest` and `ETag`.
    @Sendable func read(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        let visibility = try registry.authorizer.requireRead(reference, context: context)
        let stored = try await registry.blocking { try $0.resolve(reference, visibleTo: visibility) }
        let json = try stored.manifest.canonicalJSON()
        let headers: HTTPFields = [
            .contentType: "application/json", .eTag: "\"\(stored.digest.hex)\"", .lorastoreDigest: stored.digest.description,
        ]
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// `GET bases?repository=NAME`: the base recorded by the repository's latest adapter push.
    @Sendable func base(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        guard let repository = request.uri.queryParameters.get("repository") else {
            throw RegistryError.badRequest("name the adapter repository: ?repository=NAME")
        }
        try Reference.validate(name: repository, in: repository)
        try registry.authorizer.require(.read, on: repository, context: context)
        guard let digest = try await registry.blocking({ try $0.recordedBase(ofRepository: repository) }) else {
            throw RegistryError.notFound("\(repository) has no adapter push recording a base")
        }
        return try registry.json(RegistryAPI.BaseResponse(digest: digest))
    }
}
