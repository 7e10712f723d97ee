import Hummingbird
import Logging
import LoraStoreCore
import Metrics
import Prometheus
import ServiceLifecycle

/// Runs a registry server as a process does (`lorastore serve`): swift-metrics from every library feed the
/// server's `/metrics`, and the server runs until the process is interrupted.
public enum RegistryServer {
    /// How long a shutdown waits for requests in flight (a slow download, say) before cancelling them.
    public static let gracefulShutdownLimit = Duration.seconds(30)

    /// How long the merge engine's buffers stay unused before the server gives them back to the system
    /// (``IdleBufferRelease``): long enough for builds pulled one after another to reuse them.
    static let idleBufferTime = Duration.seconds(60)

    /// Serves `store` until the process receives SIGINT or SIGTERM, then finishes the requests in flight for
    /// at most ``gracefulShutdownLimit``.
    /// `onServerRunning` receives the port the server listens on (the one picked for port 0).
    public static func run(
        store: Store, configuration: RegistryConfiguration, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let metrics = RegistryMetrics()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        var logger = Logger(label: "lorastore.registry")
        logger.logLevel = .info
        let app = buildApplication(
            store: store, configuration: configuration, metrics: metrics, logger: logger, onServerRunning: onServerRunning)
        let release = IdleBufferRelease(idleTime: idleBufferTime, logger: logger)
        var group = ServiceGroupConfiguration(
            services: [app, release], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = gracefulShutdownLimit
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }
}
