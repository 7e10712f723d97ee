import Foundation

/// How figures are written, the same in the console and in the Markdown.
enum Format {
    /// Binary units: `64.0 MiB`, `1.00 GiB`.
    static func bytes(_ count: Int) -> String {
        let value = Double(count)
        if value >= Double(1 << 30) { return String(format: "%.2f GiB", value / Double(1 << 30)) }
        if value >= Double(1 << 20) { return String(format: "%.1f MiB", value / Double(1 << 20)) }
        if value >= 1024 { return String(format: "%.1f KiB", value / 1024) }
        return "\(count) B"
    }

    /// Decimal megabytes per second of `bytes` in `seconds`.
    static func rate(_ bytesPerSecond: Double) -> String {
        bytesPerSecond >= 10e9
            ? String(format: "%.1f GB/s", bytesPerSecond / 1e9)
            : String(format: "%.0f MB/s", bytesPerSecond / 1e6)
    }

    /// A dimensionless ratio.
    static func ratio(_ value: Double) -> String {
        value >= 10 ? String(format: "%.1f", value) : String(format: "%.3f", value)
    }

    /// A speed and its ratio to a reference: `812 MB/s (0.41×)`.
    static func rate(_ bytesPerSecond: Double, of reference: Double) -> String {
        "\(rate(bytesPerSecond)) (\(ratio(bytesPerSecond / reference))×)"
    }

    static func seconds(_ value: Double) -> String {
        value >= 10 ? String(format: "%.1f s", value) : String(format: "%.3f s", value)
    }
}
