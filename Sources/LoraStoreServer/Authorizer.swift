import LoraStoreCore

/// Decides whether a request may do what it asks: reads are open unless the server requires tokens for
/// them; pushes (blob uploads, manifests, builds) always need a push token whose namespace covers the
/// repository. No token where one is needed is 401; a token that does not allow it is 403.
///
/// When reads need tokens, a token limited to a namespace reads only its repositories, also where a request
/// names none (`list`, `stats`, lineage, a manifest or blob by digest): those answers are cut to what
/// ``readableRepositories(context:)`` allows, and what is hidden answers 404 like what does not exist.
struct Authorizer: Sendable {
    let requireTokenForReads: Bool

    /// Throws unless `context` may do `scope` on `repository` (nil: no repository in particular).
    func require(_ scope: TokenScope, on repository: String?, context: RegistryRequestContext) throws {
        if scope == .read, !requireTokenForReads { return }
        guard let token = context.token else { throw RegistryError.unauthorized() }
        guard token.allows(scope, on: repository) else {
            throw RegistryError.forbidden(
                "token \(token.id) (\(token.scope.rawValue) on \(token.namespace)) does not allow \(scope.rawValue)"
                    + (repository.map { " on \($0)" } ?? ""))
        }
    }

    /// Throws unless `context` may read at all, and returns the repositories it may read: every one when
    /// reads are open or its token's namespace is `*`, else those its token's namespace matches.
    func readableRepositories(context: RegistryRequestContext) throws -> RepositoryVisibility {
        try require(.read, on: nil, context: context)
        guard requireTokenForReads, let token = context.token else { return .all }
        return RepositoryVisibility(namespace: token.namespace)
    }

    /// Throws unless `context` may read what `reference` names, and returns the repositories it may read.
    /// A reference naming a repository the token does not cover is refused here (403); a bare digest is left
    /// to the store, which answers for a manifest outside those repositories as for a missing one (404).
    func requireRead(_ reference: Reference, context: RegistryRequestContext) throws -> RepositoryVisibility {
        try requireRead([reference], context: context)
    }

    /// ``requireRead(_:context:)`` for several references (a recipe's base and adapters).
    func requireRead(_ references: [Reference], context: RegistryRequestContext) throws -> RepositoryVisibility {
        for reference in references {
            try require(.read, on: reference.repository, context: context)
        }
        return try readableRepositories(context: context)
    }
}
