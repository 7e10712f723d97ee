import Hummingbird
import Logging
import LoraStoreCore
import Metrics
import Prometheus

/// Runs a registry server as a process does (`lorastore serve`): swift-metrics from every library feed the
/// server's `/metrics`, and the server runs until the process is interrupted.
public enum RegistryServer {
    /// Serves `store` until the process receives SIGINT or SIGTERM.
    public static func run(store: Store, configuration: RegistryConfiguration) async throws {
        let metrics = RegistryMetrics()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        var logger = Logger(label: "lorastore.registry")
        logger.logLevel = .info
        let app = buildApplication(store: store, configuration: configuration, metrics: metrics, logger: logger)
        try await app.runService()
    }
}
