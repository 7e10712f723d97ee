import Hummingbird
import Logging
import LoraStoreCore

/// Builds the registry server over `store`: the routes of API.md, authentication, JSON errors and
/// metrics. Run it with `runService()`; the worker threads stop with it. `onServerRunning` receives the
/// port the server listens on (the one picked when the configuration asks for port 0).
public func buildApplication(
    store: Store, configuration: RegistryConfiguration, metrics: RegistryMetrics = RegistryMetrics(),
    logger: Logger = Logger(label: "lorastore.registry"), onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let workers = Workers(threads: configuration.workerThreads)
    let registry = Registry(
        store: store, configuration: configuration, workers: workers,
        models: ModelCache(store: store, workers: workers, metrics: metrics),
        authorizer: Authorizer(requireTokenForReads: configuration.requireTokenForReads),
        files: FileResponder(store: store, metrics: metrics), metrics: metrics)
    // HEAD answers are the GET answers without a body: same status, Content-Length, ETag and Hub headers.
    let router = Router(context: RegistryRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: AuthenticationMiddleware(store: store, workers: workers))
    HealthController(registry: registry).addRoutes(to: router)
    let api = router.group("api/v1")
    BlobController(registry: registry).addRoutes(to: api.group("blobs"))
    ManifestController(registry: registry).addRoutes(to: api)
    QueryController(registry: registry).addRoutes(to: api)
    BuildController(registry: registry).addRoutes(to: api)
    HubController(registry: registry).addRoutes(to: router)
    let idle = configuration.idleTimeout.components
    var app = Application(
        router: router,
        server: .http1(
            configuration: .init(idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "lorastore"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
    app.addServices(workers)
    return app
}
