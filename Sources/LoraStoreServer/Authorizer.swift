import LoraStoreCore

/// Decides whether a request may do what it asks: reads are open unless the server requires tokens for
/// them; pushes (blob uploads, manifests, builds) always need a push token whose namespace covers the
/// repository. No token where one is needed is 401; a token that does not allow it is 403.
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
}
