import Hummingbird

/// Turns every error a handler throws into a ``RegistryError`` answer (JSON with a stable code), so store
/// errors reach clients as 400/404/409 with their message instead of a bare 500. The server's own failures
/// are logged in full and answered with a message that names nothing on the server.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let answer = RegistryError(translating: error)
            // A failure of the server's own: its details go to the log only. Busy (503) is not a failure: the
            // store was being collected or repaired, and the client tries again.
            if answer.status == .serviceUnavailable {
                context.logger.notice("\(request.method) \(request.uri.path) answered busy: \(error)")
            } else if answer.status.code >= 500, !(error is RegistryError) {
                context.logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            }
            throw answer
        }
    }
}
