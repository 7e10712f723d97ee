/// A safetensors file (or header being built) that breaks the format's rules.
///
/// Each rule has its own stable ``Kind`` so callers and tests can tell failures apart without parsing
/// messages; ``description`` names the file and, where one is involved, the tensor, for people:
/// `model.safetensors: tensor "q.weight": byte size 100 does not match shape [8, 4] of F32 (128 bytes)`.
public struct SafetensorsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule that was broken.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The file is shorter than the 8-byte header length.
        case fileTooShort
        /// The declared header length is over 100,000,000 bytes.
        case headerTooLarge
        /// The declared header length runs past the end of the file.
        case headerPastEndOfFile
        /// The header is not valid UTF-8.
        case invalidUTF8
        /// The header is not valid JSON.
        case invalidJSON
        /// The header is valid JSON but not an object starting with `{`.
        case headerNotAnObject
        /// A tensor's `dtype` is not a known safetensors type.
        case unknownDType
        /// A tensor's `shape` is not an array of non-negative integers.
        case invalidShape
        /// A tensor's `data_offsets` is not two non-negative integers `[begin, end]` with `begin <= end`
        /// inside the data section.
        case invalidOffsets
        /// Tensors do not tile the data section from 0 in order: a gap or an overlap.
        case nonContiguousOffsets
        /// A tensor's byte size does not match its shape and type.
        case sizeMismatch
        /// A tensor's element count or byte size does not fit in an `Int`.
        case sizeOverflow
        /// The data section has bytes after the last tensor.
        case trailingBytes
        /// Two tensors (or top-level keys) have the same name.
        case duplicateTensorName
        /// `__metadata__` is not an object whose values are all strings.
        case metadataNotString
        /// A tensor entry is not an object with `dtype`, `shape` and `data_offsets`, or uses a reserved name.
        case invalidTensorEntry
        /// A writer was given more or fewer tensors than its header declares.
        case tensorCountMismatch
    }

    /// The rule that was broken.
    public let kind: Kind
    /// The file's path, or the label the caller supplied for in-memory data.
    public let file: String
    /// The tensor involved, if any.
    public let tensor: String?
    /// What is wrong, for people (without the file and tensor, which ``description`` adds).
    public let detail: String

    /// Creates an error.
    public init(_ kind: Kind, file: String, tensor: String? = nil, detail: String) {
        self.kind = kind
        self.file = file
        self.tensor = tensor
        self.detail = detail
    }

    public var description: String {
        if let tensor {
            "\(file): tensor \"\(tensor)\": \(detail)"
        } else {
            "\(file): \(detail)"
        }
    }
}
