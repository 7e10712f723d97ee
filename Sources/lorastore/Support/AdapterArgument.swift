import ArgumentParser
import LoraStoreCore

/// `REF[@WEIGHT]`: an adapter reference with an optional merge weight (default 1), e.g. `acme/support@0.7`,
/// `acme/legal:v2@-0.5` or `acme/support@sha256:<hex>@0.5`.
struct AdapterArgument: Sendable {
    let reference: Reference
    let weight: Double

    init(parsing text: String) throws {
        do {
            (reference, weight) = try AdHocRecipe.weighted(text)
        } catch let error as ReferenceError {
            throw CommandError(error.description)
        }
    }
}
