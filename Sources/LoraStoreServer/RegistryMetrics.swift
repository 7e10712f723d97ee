import HTTPTypes
import Prometheus

/// The registry's Prometheus metrics, served at `/metrics`: requests by method and status class, bytes
/// received and sent, and merges run for pulls.
public struct RegistryMetrics: Sendable {
    /// The collectors (share it with `PrometheusMetricsFactory` to add swift-metrics from other libraries).
    public let registry: PrometheusCollectorRegistry
    private let uploadedBytes: Counter
    private let downloadedBytes: Counter
    private let materializations: Counter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        uploadedBytes = registry.makeCounter(descriptor: Self.total("blob_upload_bytes", "Blob bytes received and stored."))
        downloadedBytes = registry.makeCounter(descriptor: Self.total("download_bytes", "File and blob bytes sent."))
        materializations = registry.makeCounter(descriptor: Self.total("materializations", "Builds merged to answer a pull."))
    }

    /// The counter `lorastore_NAME_total`.
    private static func total(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lorastore", metricName: name, unitName: "total", helpText: help)
    }

    func countRequest(method: HTTPRequest.Method, status: HTTPResponse.Status) {
        registry.makeCounter(
            descriptor: Self.total("http_requests", "HTTP requests answered, by method and status class."),
            labels: [("method", method.rawValue), ("status", "\(status.code / 100)xx")]
        ).increment()
    }

    func countUpload(_ bytes: Int) { uploadedBytes.increment(by: Int64(bytes)) }
    func countDownload(_ bytes: Int) { downloadedBytes.increment(by: Int64(bytes)) }
    func countMaterialization() { materializations.increment() }

    /// The metrics in Prometheus text format.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
