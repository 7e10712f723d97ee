import AsyncHTTPClient
import Foundation
import LoraStoreCore
import NIOCore

extension RegistryClient {
    /// Pushes a base model or PEFT adapter from `path` to the server and tags it `reference`.
    ///
    /// Everything is validated and hashed here, as a local push does (an adapter against its base's
    /// manifest, fetched from the server). Then only the blobs the server lacks are uploaded (a second push
    /// of the same base sends no tensor bytes; a push interrupted and run again sends only what is still
    /// missing), and the manifest is recorded and tagged in one step on the server.
    @discardableResult
    public func push(_ path: URL, to reference: Reference, options: PushOptions = PushOptions()) async throws -> PushResult {
        guard let repository = reference.repository, reference.tag != nil else {
            throw StoreError.invalidInput(path: reference.description, reason: "push to a tag (NAME[:TAG]), not a digest")
        }
        let kind = try PushPackage.kind(of: path, requested: options.kind)
        try options.checkBase(forPushOf: kind, at: path.path)
        var base: (digest: Digest, manifest: Manifest)?
        var baseModelType: String?
        if kind == .adapter {
            let found = try await adapterBase(repository: repository, explicit: options.base, adapter: path.path)
            base = found
            baseModelType = try await modelType(of: found.manifest)
        }
        let package = try PushPackage(
            path: path, kind: kind, base: base, baseModelType: baseModelType, progress: options.progress)
        var uploaded: Set<Digest> = []
        var attempt = 1
        while true {
            let recorded: PushResult? = try await retryingWhileBusy {
                let missing = try await json(
                    RegistryAPI.MissingBlobsResponse.self, path: "blobs/missing", method: .POST,
                    body: try RegistryAPI.encoder().encode(
                        RegistryAPI.MissingBlobsRequest(repository: repository, digests: package.blobDigests))
                ).missing
                let counter = TransferCounter(
                    phase: "uploading", total: missing.reduce(0) { $0 + package.size(of: $1) }, handler: options.progress)
                for digest in missing {
                    try await upload(digest, from: package, for: repository, counter: counter)
                    uploaded.insert(digest)
                }
                do {
                    var result = try await json(
                        PushResult.self, path: "manifests/\(reference)", method: .PUT, body: package.manifestJSON)
                    result.newBlobs = uploaded.count
                    result.newLogicalBytes = uploaded.reduce(0) { $0 + package.size(of: $1) }
                    result.newStoredBytes = 0
                    result.reusedBytes = package.manifest.logicalSize - result.newLogicalBytes
                    result.skippedFiles = package.skippedFiles
                    return result
                } catch RegistryClientError.server(_, "MISSING_BLOBS", _) where attempt < Self.pushAttempts {
                    // A blob the server had when asked was collected since (garbage collection or a cache
                    // eviction on the server): ask again and send what it lacks now.
                    attempt += 1
                    return nil
                }
            }
            if let recorded { return recorded }
        }
    }

    /// How many times a push asks for missing blobs and records its manifest before it gives up.
    static let pushAttempts = 3

    /// Uploads one blob, streamed from the package.
    private func upload(
        _ digest: Digest, from package: PushPackage, for repository: String, counter: TransferCounter
    ) async throws {
        let size = package.size(of: digest)
        var query = ["repository": repository]
        switch package.encoding(of: digest) {
        case .raw: break
        case .compressed(let width): query["compress"] = String(width)
        case .floatingPoint(let layout): query["float"] = layout.dtype.rawValue
        }
        _ = try await send(
            path: "blobs/\(digest.hex)", query: query, method: .PUT,
            body: .stream(BlobChunks(package: package, digest: digest, counter: counter), length: .known(Int64(size))))
    }

    /// The `model_type` of a base's `config.json`, downloaded and checked against its digest (nil when the
    /// base has no configuration): the server lays an adapter out by it, so the client checks with it too.
    private func modelType(of base: Manifest) async throws -> String? {
        guard let entry = base.files.first(where: { $0.path == Store.modelConfigPath }) else { return nil }
        let (_, body) = try await send(path: "blobs/\(entry.digest.hex)", limit: 16 << 20)
        let bytes = Data(body.readableBytesView)
        guard Digest(of: bytes) == entry.digest else {
            throw RegistryClientError.invalidResponse("the base's \(entry.path) does not match its digest \(entry.digest)")
        }
        return bytes.withUnsafeBytes { Store.modelType(inConfig: $0) }
    }

    /// The base an adapter push is checked against: the one given, else the one the server recorded for
    /// the repository's latest adapter push.
    private func adapterBase(
        repository: String, explicit: Reference?, adapter: String
    ) async throws -> (digest: Digest, manifest: Manifest) {
        if let explicit {
            let found = try await manifest(explicit)
            guard found.manifest.kind == .base else {
                throw StoreError.wrongKind(reference: explicit.description, expected: .base, found: found.manifest.kind)
            }
            return found
        }
        let recorded: RegistryAPI.BaseResponse
        do {
            recorded = try await json(RegistryAPI.BaseResponse.self, path: "bases", query: ["repository": repository])
        } catch RegistryClientError.server(404, _, _) {
            throw StoreError.baseRequired(adapter: adapter)
        }
        do {
            return try await manifest(Reference(digest: recorded.digest))
        } catch RegistryClientError.server(let status, _, _) where status == 403 || status == 404 {
            // The registry answers a base outside the token's namespaces as not found.
            throw StoreError.invalidInput(
                path: adapter,
                reason: "the base this repository's last push was checked against (\(recorded.digest.short)) cannot be read with this token; "
                    + "give one it can read with --base")
        }
    }
}
