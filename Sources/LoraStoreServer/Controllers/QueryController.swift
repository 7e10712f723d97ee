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

    /// `GET list[?kind=base|adapter|build]`.
    @Sendable func list(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try registry.authorizer.require(.read, on: nil, context: context)
        let kindText = request.uri.queryParameters.get("kind")
        let kind = try kindText.map { text in
            guard let kind = ManifestKind(rawValue: text) else {
                throw RegistryError.badRequest("kind \(text): choose base, adapter or build")
            }
            return kind
        }
        return try registry.json(try await registry.blocking { try $0.list(kind: kind) })
    }

    /// `GET show/REF`.
    @Sendable func show(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        try registry.authorizer.require(.read, on: reference.repository, context: context)
        return try registry.json(try await registry.blocking { try $0.describe(reference) })
    }

    /// `GET lineage/REF`.
    @Sendable func lineage(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let reference = try Registry.reference(in: context)
        try registry.authorizer.require(.read, on: reference.repository, context: context)
        return try registry.json(try await registry.blocking { try $0.lineage(reference) })
    }

    /// `GET stats` or `GET stats/REF`.
    @Sendable func stats(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let text = context.parameters.getCatchAll().joined(separator: "/")
        let reference = try text.isEmpty ? nil : Reference(parsing: text)
        try registry.authorizer.require(.read, on: reference?.repository, context: context)
        return try registry.json(try await registry.blocking { try $0.stats(for: reference) })
    }
}
