import Foundation

/// A validated safetensors file, mapped into memory.
///
/// Opening a file maps it (see ``MappedFile``) and checks the header the way the reference Rust
/// implementation does, so every tensor's bytes are known to lie inside the file, tile the data section
/// without gaps or overlaps, and match their shape and type. Tensor data is never copied:
/// ``bytes(of:)`` returns a slice of the mapping.
///
/// The format: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON (possibly padded with
/// trailing spaces), then the data section, in which each tensor's `data_offsets` are relative.
public struct SafetensorsFile: Sendable {
    /// The largest header accepted, in bytes (the reference implementation's limit).
    public static let maximumHeaderSize = 100_000_000

    /// The tensors, in data order (sorted by their offsets, ties by name).
    public let tensors: [TensorInfo]
    /// The free-form string map stored under `__metadata__`, or `nil` when the header has none.
    public let metadata: [String: String]?
    /// The offset of the data section in the file: 8 plus the header length.
    public let dataOffset: Int

    private let mapping: MappedFile
    private let indexByName: [String: Int]

    /// Maps and validates the safetensors file at `url`.
    ///
    /// - Throws: ``FileAccessError`` when the file cannot be mapped, ``SafetensorsError`` when it is not a
    ///   valid safetensors file (the error names the file's path).
    public init(contentsOf url: URL) throws {
        let mapping = try MappedFile(url: url)
        (tensors, metadata, dataOffset) = try Self.parseHeader(mapping.bytes, label: url.path)
        self.mapping = mapping
        indexByName = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    /// The file's location.
    public var url: URL {
        mapping.url
    }

    /// Whether the file at ``url`` is still the one mapped, as it was then: not replaced, resized or written
    /// since. The mapping shows another process's writes, so bytes read from it before and after such a
    /// change may differ.
    var isUnchanged: Bool {
        FileIdentity(path: url.path) == mapping.identity
    }

    /// The tensor named `name`, if the file has one.
    public subscript(name name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The bytes of `tensor`, which must come from this file's ``tensors``.
    ///
    /// The buffer points into the mapping: it is valid only while this value (or a copy of it) is alive.
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        let range = tensor.dataRange
        precondition(range.lowerBound >= 0 && range.upperBound <= mapping.bytes.count - dataOffset,
                     "tensor \"\(tensor.name)\" lies outside the data of \(url.path)")
        let start = dataOffset + range.lowerBound
        return UnsafeRawBufferPointer(rebasing: mapping.bytes[start ..< start + range.count])
    }

    /// Validates a whole safetensors file held in memory (an upload, for example).
    ///
    /// - Parameters:
    ///   - bytes: The complete file.
    ///   - label: How errors name the file (a path or a caller-chosen name).
    /// - Returns: The tensors in data order, the `__metadata__` map, and the offset of the data section.
    /// - Throws: ``SafetensorsError`` naming `label` and the rule that was broken.
    public static func parseHeader(
        _ bytes: UnsafeRawBufferPointer,
        label: String
    ) throws(SafetensorsError) -> (tensors: [TensorInfo], metadata: [String: String]?, dataOffset: Int) {
        func failure(_ kind: SafetensorsError.Kind, tensor: String? = nil, _ detail: String) -> SafetensorsError {
            SafetensorsError(kind, file: label, tensor: tensor, detail: detail)
        }

        guard bytes.count >= 8 else {
            throw failure(.fileTooShort, "file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declaredLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declaredLength <= maximumHeaderSize else {
            throw failure(.headerTooLarge, "header length \(declaredLength) is over the limit of \(maximumHeaderSize) bytes")
        }
        let dataOffset = 8 + Int(declaredLength)
        guard dataOffset <= bytes.count else {
            throw failure(.headerPastEndOfFile,
                          "header length \(declaredLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8 ..< dataOffset])
        guard String(validating: header, as: UTF8.self) != nil else {
            throw failure(.invalidUTF8, "header is not valid UTF-8")
        }
        guard header.first == UInt8(ascii: "{") else {
            throw failure(.headerNotAnObject, "header does not start with '{'")
        }
        let json: OrderedJSON
        do {
            json = try OrderedJSON.parse(header)
        } catch {
            throw failure(.invalidJSON, "header is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else {
            throw failure(.headerNotAnObject, "header is \(json.typeName), not an object")
        }

        var metadata: [String: String]?
        var tensors: [TensorInfo] = []
        var names = Set<String>()
        for member in members {
            guard names.insert(member.key).inserted else {
                throw failure(.duplicateTensorName, tensor: member.key, "name appears more than once in the header")
            }
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, label: label)
            } else {
                tensors.append(try parseEntry(member, label: label))
            }
        }

        tensors.sort { a, b in
            (a.dataRange.lowerBound, a.dataRange.upperBound, a.name) < (b.dataRange.lowerBound, b.dataRange.upperBound, b.name)
        }
        let dataLength = bytes.count - dataOffset
        var position = 0
        for tensor in tensors {
            let range = tensor.dataRange
            let offsets = "data_offsets [\(range.lowerBound), \(range.upperBound)]"
            if range.lowerBound > position {
                throw failure(.nonContiguousOffsets, tensor: tensor.name,
                              "\(offsets) leave a gap of \(range.lowerBound - position) bytes after byte \(position)")
            }
            if range.lowerBound < position {
                throw failure(.nonContiguousOffsets, tensor: tensor.name,
                              "\(offsets) overlap the previous tensor, which ends at byte \(position)")
            }
            let expected = try TensorInfo.byteCount(
                dtype: tensor.dtype, shape: tensor.shape, file: label, tensor: tensor.name
            )
            guard range.count == expected else {
                throw failure(.sizeMismatch, tensor: tensor.name, "byte size \(range.count) does not match "
                              + "shape \(tensor.shape) of \(tensor.dtype.rawValue) (\(expected) bytes)")
            }
            guard range.upperBound <= dataLength else {
                throw failure(.invalidOffsets, tensor: tensor.name,
                              "\(offsets) run past the end of the data section (\(dataLength) bytes)")
            }
            position = range.upperBound
        }
        guard position == dataLength else {
            throw failure(.trailingBytes, "\(dataLength - position) bytes follow the last tensor "
                          + "(data section is \(dataLength) bytes, tensors end at byte \(position))")
        }
        return (tensors, metadata, dataOffset)
    }

    /// Reads `__metadata__`: `null` or an object whose values are all strings.
    private static func parseMetadata(_ value: OrderedJSON, label: String) throws(SafetensorsError) -> [String: String]? {
        switch value {
        case .null:
            return nil
        case .object(let members):
            var metadata: [String: String] = [:]
            for member in members {
                guard case .string(let string) = member.value else {
                    throw SafetensorsError(
                        .metadataNotString, file: label,
                        detail: "__metadata__ value of \"\(member.key)\" is \(member.value.typeName), not a string"
                    )
                }
                guard metadata.updateValue(string, forKey: member.key) == nil else {
                    throw SafetensorsError(.invalidJSON, file: label,
                                           detail: "__metadata__ has the key \"\(member.key)\" more than once")
                }
            }
            return metadata
        default:
            throw SafetensorsError(.metadataNotString, file: label,
                                   detail: "__metadata__ is \(value.typeName), not an object of strings")
        }
    }

    /// Reads one tensor entry: `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}`.
    ///
    /// Other fields are ignored, as the reference implementation does.
    private static func parseEntry(_ member: OrderedJSON.Member, label: String) throws(SafetensorsError) -> TensorInfo {
        let name = member.key
        func failure(_ kind: SafetensorsError.Kind, _ detail: String) -> SafetensorsError {
            SafetensorsError(kind, file: label, tensor: name, detail: detail)
        }

        guard case .object(let members) = member.value else {
            throw failure(.invalidTensorEntry, "entry is \(member.value.typeName), not an object")
        }
        var fields: [String: OrderedJSON] = [:]
        for field in members {
            guard fields.updateValue(field.value, forKey: field.key) == nil else {
                throw failure(.invalidTensorEntry, "entry has the field \"\(field.key)\" more than once")
            }
        }
        guard let dtypeField = fields["dtype"], let shapeField = fields["shape"],
              let offsetsField = fields["data_offsets"]
        else {
            let missing = ["dtype", "shape", "data_offsets"].filter { fields[$0] == nil }
            throw failure(.invalidTensorEntry, "entry lacks \(missing.joined(separator: ", "))")
        }

        guard case .string(let dtypeName) = dtypeField else {
            throw failure(.invalidTensorEntry, "dtype is \(dtypeField.typeName), not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw failure(.unknownDType, "unknown dtype \"\(dtypeName)\"")
        }

        guard case .array(let dimensions) = shapeField else {
            throw failure(.invalidShape, "shape is \(shapeField.typeName), not an array")
        }
        var shape: [Int] = []
        for dimension in dimensions {
            guard let value = dimension.nonNegativeInteger else {
                throw failure(.invalidShape, "shape has \(dimension.typeName), not a non-negative integer")
            }
            shape.append(value)
        }

        guard case .array(let offsets) = offsetsField, offsets.count == 2,
              let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger
        else {
            throw failure(.invalidOffsets, "data_offsets must be two non-negative integers [begin, end]")
        }
        guard begin <= end else {
            throw failure(.invalidOffsets, "data_offsets [\(begin), \(end)] end before they begin")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin ..< end)
    }
}
