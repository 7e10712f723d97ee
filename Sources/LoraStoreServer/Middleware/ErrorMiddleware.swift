import Hummingbird

/// Turns every error a handler throws into a ``RegistryError`` answer (JSON with a stable code), so store
/// errors reach clients as 400/404/409 with their message instead of a bare 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            throw RegistryError(translating: error)
        }
    }
}
