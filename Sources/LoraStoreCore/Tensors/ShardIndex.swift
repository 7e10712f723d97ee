import Foundation

/// The index of a sharded checkpoint, `model.safetensors.index.json`: which shard file holds each tensor.
///
/// The format written by Hugging Face transformers:
///
///     {
///       "metadata": {
///         "total_parameters": 123712,
///         "total_size": 494848
///       },
///       "weight_map": {
///         "lm_head.weight": "model-00003-of-00003.safetensors",
///         ...
///       }
///     }
///
/// Shard names are validated as plain file names, so an index can never point outside its folder.
/// Metadata keys other than `total_size` and `total_parameters`, and top-level keys other than
/// `metadata` and `weight_map`, are ignored.
public struct ShardIndex: Sendable, Equatable {
    /// The conventional file name of an index.
    public static let fileName = "model.safetensors.index.json"

    /// `metadata.total_size`: the sum of the byte sizes of all tensors (not the size of the shard files).
    public let totalSize: Int
    /// `metadata.total_parameters`, written by recent transformers versions.
    public let totalParameters: Int?
    /// Tensor name → shard file name.
    public let weightMap: [String: String]

    /// Creates an index, checking that every shard name is a plain file name.
    ///
    /// - Throws: ``ShardIndexError`` of kind `invalidField` for a negative size, `invalidFileName` for a bad shard name.
    public init(totalSize: Int, totalParameters: Int? = nil, weightMap: [String: String]) throws(ShardIndexError) {
        try self.init(totalSize: totalSize, totalParameters: totalParameters, weightMap: weightMap, label: Self.fileName)
    }

    /// Reads and validates the index file at `url`.
    ///
    /// - Throws: An error from reading the file, or ``ShardIndexError`` naming the file's path.
    public init(contentsOf url: URL) throws {
        try self.init(data: Data(contentsOf: url), label: url.path)
    }

    /// Validates an index held in memory.
    ///
    /// - Parameters:
    ///   - data: The JSON document.
    ///   - label: How errors name the file.
    /// - Throws: ``ShardIndexError`` naming `label` and the offending field.
    public init(data: Data, label: String) throws(ShardIndexError) {
        func failure(_ kind: ShardIndexError.Kind, _ field: String?, _ detail: String) -> ShardIndexError {
            ShardIndexError(kind, file: label, field: field, detail: detail)
        }
        /// The members of an object, with duplicate keys rejected.
        func fields(of value: OrderedJSON, _ field: String?) throws(ShardIndexError) -> [String: OrderedJSON] {
            guard case .object(let members) = value else {
                throw failure(.invalidField, field, "is \(value.typeName), not an object")
            }
            var fields: [String: OrderedJSON] = [:]
            for member in members {
                guard fields.updateValue(member.value, forKey: member.key) == nil else {
                    throw failure(.duplicateKey, field, "has the key \"\(member.key)\" more than once")
                }
            }
            return fields
        }

        let parsed = data.withUnsafeBytes { bytes in
            Result { () throws(OrderedJSON.SyntaxError) in try OrderedJSON.parse(bytes) }
        }
        let document: OrderedJSON
        switch parsed {
        case .success(let value): document = value
        case .failure(let error): throw failure(.invalidJSON, nil, "not valid JSON: \(error)")
        }

        let top = try fields(of: document, nil)
        guard let metadataValue = top["metadata"] else { throw failure(.missingField, "metadata", "is missing") }
        guard let weightMapValue = top["weight_map"] else { throw failure(.missingField, "weight_map", "is missing") }
        let metadata = try fields(of: metadataValue, "metadata")

        guard let totalSizeValue = metadata["total_size"] else {
            throw failure(.missingField, "metadata.total_size", "is missing")
        }
        guard let totalSize = Self.integer(totalSizeValue) else {
            throw failure(.invalidField, "metadata.total_size", "is \(totalSizeValue.typeName), not a non-negative integer")
        }
        var totalParameters: Int?
        if let value = metadata["total_parameters"] {
            guard let integer = Self.integer(value) else {
                throw failure(.invalidField, "metadata.total_parameters", "is \(value.typeName), not a non-negative integer")
            }
            totalParameters = integer
        }

        var weightMap: [String: String] = [:]
        for (tensor, value) in try fields(of: weightMapValue, "weight_map") {
            guard case .string(let file) = value else {
                throw failure(.invalidField, "weight_map[\"\(tensor)\"]", "is \(value.typeName), not a file name")
            }
            weightMap[tensor] = file
        }
        try self.init(totalSize: totalSize, totalParameters: totalParameters, weightMap: weightMap, label: label)
    }

    private init(totalSize: Int, totalParameters: Int?, weightMap: [String: String], label: String) throws(ShardIndexError) {
        guard totalSize >= 0 else {
            throw ShardIndexError(.invalidField, file: label, field: "metadata.total_size", detail: "is negative")
        }
        if let totalParameters, totalParameters < 0 {
            throw ShardIndexError(.invalidField, file: label, field: "metadata.total_parameters", detail: "is negative")
        }
        for (tensor, file) in weightMap.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) })
        where !Self.isPlainFileName(file) {
            throw ShardIndexError(.invalidFileName, file: label, field: "weight_map[\"\(tensor)\"]",
                                  detail: "\"\(file)\" is not a plain file name")
        }
        self.totalSize = totalSize
        self.totalParameters = totalParameters
        self.weightMap = weightMap
    }

    /// The distinct shard file names, sorted.
    public var shardFiles: [String] {
        Set(weightMap.values).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The index as transformers writes it: `json.dumps(index, indent=2, sort_keys=True)` plus a newline.
    public func encoded() -> Data {
        var json: [UInt8] = []
        func line(_ indent: Int, _ text: String) {
            json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
            json.append(contentsOf: text.utf8)
        }
        line(0, "{\n")
        line(2, "\"metadata\": {\n")
        if let totalParameters {
            line(4, "\"total_parameters\": \(totalParameters),\n")
        }
        line(4, "\"total_size\": \(totalSize)\n")
        line(2, "},\n")
        if weightMap.isEmpty {
            line(2, "\"weight_map\": {}\n")
        } else {
            line(2, "\"weight_map\": {\n")
            let entries = weightMap.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, entry) in entries.enumerated() {
                line(4, "")
                OrderedJSON.appendQuoted(entry.key, asciiOnly: true, to: &json)
                json.append(contentsOf: ": ".utf8)
                OrderedJSON.appendQuoted(entry.value, asciiOnly: true, to: &json)
                json.append(contentsOf: (index + 1 < entries.count ? ",\n" : "\n").utf8)
            }
            line(2, "}\n")
        }
        line(0, "}\n")
        return Data(json)
    }

    /// Whether `name` names a file inside the index's folder: not empty, not `.` or `..`, and free of
    /// path separators and NUL.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".."
            && !name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
    }

    /// A non-negative integer, also accepting integral numbers written with a fraction or exponent
    /// (`494848.0`), which some published indexes use.
    private static func integer(_ value: OrderedJSON) -> Int? {
        if let integer = value.nonNegativeInteger { return integer }
        guard case .number(let text) = value, let double = Double(text),
              double >= 0, double < 0x1p63, double.rounded(.towardZero) == double
        else { return nil }
        return Int(double)
    }
}
