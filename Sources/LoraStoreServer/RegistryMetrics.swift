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
        uploadedBytes = registry.makeCounter(name: "lorastore_blob_upload_bytes_total", help: "Blob bytes received and stored.")
        downloadedBytes = registry.makeCounter(name: "lorastore_download_bytes_total", help: "File and blob bytes sent.")
        materializations = registry.makeCounter(name: "lorastore_materializations_total", help: "Builds merged to answer a pull.")
    }

    func countRequest(method: HTTPRequest.Method, status: HTTPResponse.Status) {
        registry.makeCounter(
            name: "lorastore_http_requests_total", labels: [("method", method.rawValue), ("status", "\(status.code / 100)xx")],
            help: "HTTP requests answered, by method and status class."
        ).increment()
    }

    func countUpload(_ bytes: Int) { uploadedBytes.increment(by: Int64(bytes)) }
    func countDownload(_ bytes: Int) { downloadedBytes.increment(by: Int64(bytes)) }
    func countMaterialization() { materializations.increment() }

    /// The metrics in Prometheus text format.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
