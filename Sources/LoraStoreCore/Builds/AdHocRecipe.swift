/// A build named inline: `BASE+ADAPTER[@WEIGHT]+...`, e.g. `llama:v1+acme/support@0.7+acme/legal@0.3`.
///
/// `+` never appears in a reference, so any text containing it is an ad-hoc recipe. A weight is the number
/// after an adapter's last `@` (default 1); `acme/x@sha256:<hex>@0.5` pins the adapter by digest.
public struct AdHocRecipe: Sendable {
    public let base: Reference
    public let adapters: [(reference: Reference, weight: Double)]

    /// Parses `text`, or returns nil when it is not an ad-hoc recipe (no `+`).
    public init?(parsing text: String) throws {
        guard text.contains("+") else { return nil }
        let parts = text.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else {
            throw ReferenceError(text, "an ad-hoc recipe is BASE+ADAPTER[@WEIGHT]+... with no empty parts")
        }
        if Self.weightStart(in: first) != nil {
            throw ReferenceError(first, "the base takes no weight; weights follow adapters (BASE+ADAPTER@0.5)")
        }
        base = try Reference(parsing: first)
        adapters = try parts.dropFirst().map { try Self.weighted($0) }
    }

    /// Splits `REF[@WEIGHT]`. Text after the last `@` is a weight unless it is a digest (`sha256:...`); a
    /// weight is a decimal number (`0.5`, `-1`, `2e-1`).
    public static func weighted(_ text: String) throws -> (reference: Reference, weight: Double) {
        guard let at = weightStart(in: text) else { return (try Reference(parsing: text), 1) }
        let weightText = text[text.index(after: at)...]
        let decimal = weightText.unicodeScalars.allSatisfy { "0123456789.+-eE".unicodeScalars.contains($0) }
        guard decimal, let weight = Double(weightText) else {
            throw ReferenceError(text, "the weight \"\(weightText)\" after @ is not a decimal number (write REF@0.5)")
        }
        guard weight.isFinite else { throw ReferenceError(text, "the weight must be a finite number") }
        let reference = String(text[..<at])
        if weightStart(in: reference) != nil {
            throw ReferenceError(text, "an adapter takes one weight (write REF@0.5)")
        }
        return (try Reference(parsing: reference), weight)
    }

    /// Where the weight of `text` starts: its last `@`, unless a digest (`sha256:...`) follows it.
    private static func weightStart(in text: String) -> String.Index? {
        guard let at = text.lastIndex(of: "@"), !text[text.index(after: at)...].hasPrefix("sha256:") else { return nil }
        return at
    }
}
