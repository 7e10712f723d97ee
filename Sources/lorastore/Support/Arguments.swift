import ArgumentParser
import LoraStoreCore

extension ManifestKind: ExpressibleByArgument {}

/// Parses a reference argument, turning a malformed one into a validation error that says why.
func parseReference(_ text: String) throws -> Reference {
    do {
        return try Reference(parsing: text)
    } catch {
        throw CommandError(error.description)
    }
}
