/// A `model.safetensors.index.json` that is malformed, naming the file and the offending field.
public struct ShardIndexError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The file is not valid JSON (or not UTF-8).
        case invalidJSON
        /// A required field is absent.
        case missingField
        /// A field has the wrong type or an invalid value.
        case invalidField
        /// An object has the same key twice.
        case duplicateKey
        /// A shard file name is not a plain file name (empty, `.`, `..`, or containing `/`, `\` or NUL).
        case invalidFileName
    }

    /// What is wrong.
    public let kind: Kind
    /// The file's path, or the label the caller supplied.
    public let file: String
    /// The field involved, e.g. `metadata.total_size` or `weight_map["lm_head.weight"]`; `nil` for the whole document.
    public let field: String?
    /// What is wrong, for people.
    public let detail: String

    /// Creates an error.
    public init(_ kind: Kind, file: String, field: String?, detail: String) {
        self.kind = kind
        self.file = file
        self.field = field
        self.detail = detail
    }

    public var description: String {
        if let field {
            "\(file): \(field): \(detail)"
        } else {
            "\(file): \(detail)"
        }
    }
}
