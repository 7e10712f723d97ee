import Hummingbird
import LoraStoreCore

/// Builds and pulls: record a recipe, list a base's, adapter's or build's files (materializing a build on
/// its first request), and send one file.
struct BuildController {
    let registry: Registry

    func addRoutes(to group: RouterGroup<RegistryRequestContext>) {
        group.post("builds", use: create)
        group.get("files/**", use: files)
        group.get("file/**", use: file)
    }

    /// `POST builds`: records a recipe and tags it; nothing is merged. The caller must be able to read the
    /// base and adapters: pulling the build reads them.
    @Sendable func create(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        // Whether the token may push at all is known before the body is read; where to, after.
        try registry.authorizer.require(.push, on: nil, context: context)
        let body = try await registry.decode(RegistryAPI.BuildRequest.self, from: request)
        let tag = try Reference(parsing: body.tag)
        try registry.authorizer.require(.push, on: tag.repository, context: context)
        let base = try Reference(parsing: body.base)
        let adapters = try body.adapters.map { (reference: try Reference(parsing: $0.reference), weight: $0.weight) }
        for (reference, weight) in adapters where !weight.isFinite {
            throw RegistryError.badRequest("the weight of \(reference) must be a finite number")
        }
        let visibility = try registry.authorizer.requireRead([base] + adapters.map(\.reference), context: context)
        let digest = try await registry.blocking {
            try $0.createBuild(
                base: base, adapters: adapters, options: body.options, tag: tag, visibleTo: visibility,
                allowingOtherBase: body.allowOtherBase ?? false)
        }
        return try registry.json(RegistryAPI.BuildResponse(reference: tag.description, digest: digest), status: .created)
    }

    /// `GET files/REF`: the files of what REF names, each with size and SHA-256. REF may be an ad-hoc recipe
    /// `BASE+ADAPTER[@WEIGHT]+...`, which records a build and so needs a push token, and read on its base
    /// and adapters.
    @Sendable func files(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let text = try Registry.path(in: context)
        let stored: StoredManifest
        let model: ServedModel
        let pinned: String
        if let recipe = try AdHocRecipe(parsing: text) {
            try registry.authorizer.require(.push, on: nil, context: context)
            let visibility = try registry.authorizer.requireRead(
                [recipe.base] + recipe.adapters.map(\.reference), context: context)
            (stored, model) = try await servedAdHoc(text, visibleTo: visibility)
            pinned = stored.digest.description
        } else {
            let reference = try Reference(parsing: text)
            let visibility = try registry.authorizer.requireRead(reference, context: context)
            stored = try await registry.blocking { try $0.resolve(reference, visibleTo: visibility) }
            model = try await registry.models.model(stored).model
            pinned = reference.repository.map { "\($0)@\(stored.digest)" } ?? stored.digest.description
        }
        let files = model.files.compactMap { file in
            file.digest.map { RegistryAPI.FileList.File(name: file.name, size: file.size, digest: $0) }
        }
        return try registry.json(RegistryAPI.FileList(digest: stored.digest, kind: stored.kind, pinned: pinned, files: files))
    }

    /// Records an ad-hoc recipe's build and materializes it for serving. Garbage collection may remove the
    /// untagged build between the two (it spares a build only once it is held); recorded again it is the same
    /// build, so this tries up to three times before the build's absence is the answer.
    private func servedAdHoc(
        _ text: String, visibleTo visibility: RepositoryVisibility
    ) async throws -> (stored: StoredManifest, model: ServedModel) {
        var attempt = 1
        while true {
            let stored = try await registry.blocking { store in
                try store.resolve(Reference(digest: try store.resolveBuild(text, visibleTo: visibility)))
            }
            do {
                return (stored, try await registry.models.model(stored).model)
            } catch StoreError.notFound(let missing) where missing == stored.digest.description && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// `GET file/NAME?ref=REF`: one file of what REF names, with `ETag`, `Content-Length` and `Range`. NAME
    /// may have folders (a `separate` build's adapters are under `adapters/`).
    @Sendable func file(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try Registry.path(in: context)
        guard let text = request.uri.queryParameters.get("ref") else {
            throw RegistryError.badRequest("name what the file belongs to: ?ref=NAME@sha256:...")
        }
        let reference = try Reference(parsing: text)
        let visibility = try registry.authorizer.requireRead(reference, context: context)
        guard ReceiveError.isSafeRelativePath(name) else { throw RegistryError.notFound("no file \(name) in \(reference)") }
        let stored = try await registry.blocking { try $0.resolve(reference, visibleTo: visibility) }
        let (model, hold) = try await registry.models.model(stored)
        guard let file = model.file(named: name), let digest = file.digest else {
            throw RegistryError.notFound("no file \(name) in \(reference)")
        }
        return try registry.files.response(for: file, digest: digest, request: request, holding: hold)
    }
}
