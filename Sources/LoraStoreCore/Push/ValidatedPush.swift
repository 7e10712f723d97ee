import Foundation

/// A push that passed validation, with its manifest's canonical JSON and the tag it goes to: what the
/// store step writes.
struct ValidatedPush: Sendable {
    var prepared: PreparedPush
    /// The manifest's canonical JSON and its digest (the manifest's address).
    var json: Data
    var digest: Digest
    var repository: String
    var tag: String
    /// Files in the folder that were not pushed, with the reason.
    var skipped: [String]
    /// For a quantized base: what was quantized and what was kept.
    var quantization: QuantizationSummary?

    init(
        _ prepared: PreparedPush, repository: String, tag: String, skipped: [String],
        quantization: QuantizationSummary? = nil
    ) throws {
        self.prepared = prepared
        json = try prepared.manifest.canonicalJSON()
        digest = Digest(of: json)
        self.repository = repository
        self.tag = tag
        self.skipped = skipped
        self.quantization = quantization
    }
}
