import Hummingbird

/// Counts requests by method and status class into the registry's Prometheus metrics.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RegistryMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.countRequest(method: request.method, status: response.status)
            return response
        } catch let error as any HTTPResponseError {
            metrics.countRequest(method: request.method, status: error.status)
            throw error
        } catch {
            metrics.countRequest(method: request.method, status: .internalServerError)
            throw error
        }
    }
}
