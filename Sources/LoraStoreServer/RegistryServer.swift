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
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = gracefulShutdownLimit
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }
}
