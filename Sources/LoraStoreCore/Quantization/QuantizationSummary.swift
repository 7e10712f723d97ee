/// What quantizing a base did: the weights it quantized and the candidates it left as they were.
public struct QuantizationSummary: Sendable, Hashable, Codable {
    /// The scheme of the quantized weights.
    public var scheme: QuantizationScheme
    /// The weights stored quantized, in file order.
    public var quantized: [String]
    /// Projection weights kept unquantized, each as `name: reason` (a row length the scheme cannot
    /// store).
    public var kept: [String]

    /// Creates a summary.
    public init(scheme: QuantizationScheme, quantized: [String], kept: [String]) {
        self.scheme = scheme
        self.quantized = quantized
        self.kept = kept
    }
}
