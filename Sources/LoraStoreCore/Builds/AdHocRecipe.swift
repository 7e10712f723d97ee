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
        base = try Reference(parsing: first)
        adapters = try parts.dropFirst().map { try Self.weighted($0) }
    }

    /// Splits `REF[@WEIGHT]`. Text after the last `@` is a weight unless it is a digest (`sha256:...`).
    public static func weighted(_ text: String) throws -> (reference: Reference, weight: Double) {
        guard let at = text.lastIndex(of: "@"), !text[text.index(after: at)...].hasPrefix("sha256:") else {
            return (try Reference(parsing: text), 1)
        }
        let weightText = text[text.index(after: at)...]
        guard let weight = Double(weightText) else {
            throw ReferenceError(text, "the weight \"\(weightText)\" after @ is not a number (write REF@0.5)")
        }
        guard weight.isFinite else { throw ReferenceError(text, "the weight must be a finite number") }
        return (try Reference(parsing: String(text[..<at])), weight)
    }
}
