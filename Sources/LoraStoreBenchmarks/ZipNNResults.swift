import Foundation

/// What scripts/zipnn_bench.py measured on the codec samples (or why it did not run).
struct ZipNNResults: Decodable {
    struct Entry: Decodable {
        /// `BF16`, `F16` or `F32`.
        let dtype: String
        let bytes: Int
        /// Compressed size / raw size.
        let ratio: Double
        let compressBytesPerSecond: Double
        let decompressBytesPerSecond: Double
    }

    /// `ok` or `skipped`.
    let status: String
    let reason: String?
    let version: String?
    let settings: String?
    let results: [Entry]?

    static func load(_ url: URL) throws -> ZipNNResults {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ZipNNResults.self, from: Data(contentsOf: url))
    }

    func entry(for dtype: String) -> Entry? {
        results?.first { $0.dtype == dtype }
    }
}
