import Hummingbird
import LoraStoreCore

/// What `ls`, `show`, `lineage` and `stats` print, as JSON.
struct QueryController {
    let registry: Registry

    func addRoutes(to group: RouterGroup<RegistryRequestContext>) {
        group.get("list", use: list)
        group.get("show/**", use: show)
        group.get("lineage/**", use: lineage)
        group.get("stats", use: stats)
        group.get("stats/**", use: stats)
    }

    /// `GET list[?kind=base|adapter|build]`: the tags of the repositories the caller may read. The plural
    /// (`bases`...), as `lorastore ls` spells it, is read too.
    @Sendable func list(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let visibility = try registry.authorizer.readableRepositories(context: context)
        let kindText = request.uri.queryParameters.get("kind")
        let kind = try kindText.map { text in
            guard let kind = ManifestKind(rawValue: text) ?? (text.hasSuffix("s") ? ManifestKind(rawValue: String(text.dropLast())) : nil)
            else {
                throw RegistryError.badRequest("kind \(text): choose base, adapter or build")
            }
            return kind
        }
        return try registry.json(try await registry.blocking { try $0.list(kind: kind, visibleTo: visibility) })
    }

    /// `GET show/REF`, with the tags of the repositories the caller may read.
    @Sendable func show(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        let visibility = try registry.authorizer.requireRead(reference, context: context)
        return try registry.json(try await registry.blocking { try $0.describe(reference, visibleTo: visibility) })
    }

    /// `GET lineage/REF`: what the caller may read of it.
    @Sendable func lineage(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        let visibility = try registry.authorizer.requireRead(reference, context: context)
        return try registry.json(try await registry.blocking { try $0.lineage(reference, visibleTo: visibility) })
    }

    /// `GET stats` or `GET stats/REF`: the figures of the repositories the caller may read (the whole store's
    /// for a caller that may read every one).
    @Sendable func stats(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let text = try Registry.path(in: context)
        let reference = try text.isEmpty ? nil : Reference(parsing: text)
        let visibility = try reference.map { try registry.authorizer.requireRead($0, context: context) }
            ?? registry.authorizer.readableRepositories(context: context)
        return try registry.json(try await registry.blocking { try $0.stats(for: reference, visibleTo: visibility) })
    }
}
