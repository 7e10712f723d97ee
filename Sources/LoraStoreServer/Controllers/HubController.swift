import Foundation
import Hummingbird
import LoraStoreCore

/// The part of the Hugging Face Hub API that downloads use, so `huggingface_hub`, `transformers` and other
/// tools pull from lorastore with `HF_ENDPOINT` set to the server.
///
/// A Hub repo id is a repository name (`acme/support-bot`; one or two segments, as the Hub allows); a
/// revision is a tag, `main` (the tag `main`, else `latest`), or a 40-hex commit id, which is the first
/// 40 hex digits of the manifest digest. Bases and adapters are served in their own layout, builds as the
/// merged model (materialized on first request).
struct HubController {
    let registry: Registry

    func addRoutes(to router: Router<RegistryRequestContext>) {
        for prefix in ["api/models/:first", "api/models/:first/:second"] {
            // Without a revision (`model_info`, `repo_exists`): `main`, else the newest tag (see `revision`).
            router.get(RouterPath(prefix), use: revision)
            router.get("\(prefix)/revision/:revision", use: revision)
            router.get("\(prefix)/tree/:revision", use: tree)
            router.get("\(prefix)/tree/:revision/**", use: tree)
        }
        for prefix in [":first", ":first/:second"] {
            router.get("\(prefix)/resolve/:revision/**", use: resolve)
        }
    }

    /// `GET /api/models/{repo}/revision/{rev}` (and `/api/models/{repo}`: at `main`, else at the newest tag):
    /// the repo's files at a revision, and its commit id.
    @Sendable func revision(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let (repository, stored) = try await resolveRevision(context)
        let (model, _) = try await registry.models.model(stored)
        struct Sibling: Encodable { var rfilename: String }
        struct Info: Encodable {
            var id: String
            var modelId: String
            var sha: String
            var `private` = false
            var disabled = false
            var gated = false
            var tags: [String]
            var lastModified: Date
            var createdAt: Date
            var siblings: [Sibling]
        }
        return try registry.json(
            Info(
                id: repository, modelId: repository, sha: Self.commit(stored.digest), tags: ["lorastore", stored.kind.rawValue],
                lastModified: stored.createdAt, createdAt: stored.createdAt,
                siblings: model.files.map { Sibling(rfilename: $0.name) }))
    }

    /// `GET /api/models/{repo}/tree/{rev}`: every file with its size, and for tensor files the LFS entry
    /// (SHA-256 and size) the Hub gives large files, in one page; files in folders (a `separate` build's
    /// adapters) are listed with their paths, under `tree/{rev}/{folder}` too; a path with no file is 404
    /// `EntryNotFound`, as on the Hub.
    @Sendable func tree(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let (_, stored) = try await resolveRevision(context)
        let path = try Registry.path(in: context)
        let (model, _) = try await registry.models.model(stored)
        struct LFS: Encodable {
            var oid: String
            var size: Int
            var pointerSize = 134
        }
        struct Entry: Encodable {
            var type = "file"
            var oid: String
            var size: Int
            var path: String
            var lfs: LFS?
        }
        let listed = model.files.filter { path.isEmpty || $0.name == path || $0.name.hasPrefix(path + "/") }
        guard !listed.isEmpty || path.isEmpty else {
            throw RegistryError.notFound("\(path) is not in this revision", hubCode: "EntryNotFound")
        }
        let entries = listed.compactMap { file in
            file.digest.map { digest in
                Entry(
                    oid: String(digest.hex.prefix(40)), size: file.size, path: file.name,
                    lfs: file.isTensorFile ? LFS(oid: digest.hex, size: file.size) : nil)
            }
        }
        return try registry.json(entries)
    }

    /// `HEAD`/`GET /{repo}/resolve/{rev}/{file}`: the file, with `X-Repo-Commit`, `ETag` (its SHA-256),
    /// `Content-Length`, `Range`, and for tensor files `X-Linked-Etag` and `X-Linked-Size`.
    @Sendable func resolve(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let (repository, stored) = try await resolveRevision(context)
        let name = try Registry.path(in: context)
        let commit = Self.commit(stored.digest)
        var headers: HTTPFields = [:]
        headers[.xRepoCommit] = commit
        let (model, hold) = try await registry.models.model(stored)
        guard ReceiveError.isSafeRelativePath(name), let file = model.file(named: name), let digest = file.digest else {
            var error = RegistryError.notFound("\(repository)@\(commit) has no file \(name)", hubCode: "EntryNotFound")
            error.extraHeaders = headers
            throw error
        }
        if file.isTensorFile {
            headers[.xLinkedEtag] = "\"\(digest.hex)\""
            headers[.xLinkedSize] = String(file.size)
        }
        return try registry.files.response(for: file, digest: digest, request: request, headers: headers, holding: hold)
    }

    /// The repo id and the manifest a revision names, or the Hub's error codes.
    private func resolveRevision(_ context: RegistryRequestContext) async throws -> (String, StoredManifest) {
        let first = try context.parameters.require("first")
        let repository = context.parameters.get("second").map { "\(first)/\($0)" } ?? first
        let asked = context.parameters.get("revision")
        let revision = asked ?? "main"
        do {
            try Reference.validate(name: repository, in: repository)
        } catch {
            throw RegistryError.notFound("repository \(repository) not found", hubCode: "RepoNotFound")
        }
        try registry.authorizer.require(.read, on: repository, context: context)
        let tags = try await registry.blocking { store in try store.list().filter { $0.repository == repository } }
        guard !tags.isEmpty else { throw RegistryError.notFound("repository \(repository) not found", hubCode: "RepoNotFound") }
        let entry = Self.isCommit(revision)
            ? tags.first { Self.commit($0.digest) == revision }
            : tags.first { $0.tag == revision } ?? (revision == "main" ? tags.first { $0.tag == Reference.defaultTag } : nil)
                // Asked for no revision (does the repo exist, what is in it), a repo with neither shows its newest tag.
                ?? (asked == nil ? tags.max { $0.updatedAt < $1.updatedAt } : nil)
        guard let entry else {
            throw RegistryError.notFound("\(repository) has no revision \(revision)", hubCode: "RevisionNotFound")
        }
        let stored = try await registry.blocking { try $0.resolve(Reference(digest: entry.digest)) }
        return (repository, stored)
    }

    /// The 40-hex commit id of a manifest: the first 40 hex digits of its digest.
    static func commit(_ digest: Digest) -> String { String(digest.hex.prefix(40)) }

    private static func isCommit(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
