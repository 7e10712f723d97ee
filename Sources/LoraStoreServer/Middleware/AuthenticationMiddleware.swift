import Hummingbird
import LoraStoreCore

/// Reads `Authorization: Bearer TOKEN` and puts the live token into the context. A lorastore token that is
/// unknown or revoked is answered 401 at once, whatever the route: a client that sends a wrong secret learns
/// so rather than silently getting anonymous access. Any other credentials are ignored, so the request is
/// anonymous: a bearer secret that is not a lorastore one (no ``NewToken/secretPrefix``: huggingface_hub
/// sends the user's huggingface.co token to any `HF_ENDPOINT`), and another scheme (a proxy's `Basic`
/// credentials in front of `/health`). Whether a route needs a token is the route's decision (see
/// ``Authorizer``).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext

    let store: Store
    let workers: Workers

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        let parts = header.split(separator: " ", maxSplits: 1)
        let secret = parts.count == 2 && parts[0].lowercased() == "bearer"
            ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
        guard secret.hasPrefix(NewToken.secretPrefix) else { return try await next(request, context) }
        let store = store
        guard let token = try await workers.run({ try store.authenticate(secret: secret) }) else {
            throw RegistryError.unauthorized("the token is unknown or revoked")
        }
        var context = context
        context.token = token
        return try await next(request, context)
    }
}
