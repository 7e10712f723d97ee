import ArgumentParser
import LoraStoreCore

/// `REF[@WEIGHT]`: an adapter reference with an optional merge weight (default 1), e.g. `acme/support@0.7`,
/// `acme/legal:v2@-0.5` or `acme/support@sha256:<hex>@0.5`.
struct AdapterArgument: ExpressibleByArgument, Sendable {
    let reference: Reference
    let weight: Double

    init?(argument: String) {
        try? self.init(parsing: argument)
    }

    init(parsing text: String) throws {
        var referenceText = text
        var weight = 1.0
        if let at = text.lastIndex(of: "@"), let value = Double(text[text.index(after: at)...]) {
            guard value.isFinite else { throw ValidationError("\(text): the weight must be a finite number") }
            referenceText = String(text[..<at])
            weight = value
        }
        reference = try parseReference(referenceText)
        self.weight = weight
    }
}
