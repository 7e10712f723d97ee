/// The header of a safetensors file about to be written: tensor layout plus the exact header bytes.
///
/// Tensors are laid out contiguously in the order given, and the header is serialized deterministically
/// (the same entries and metadata always give the same bytes, so written files can be content-addressed):
///
///     {"__metadata__":{"a":"1","b":"2"},"q.weight":{"dtype":"F32","shape":[8,4],"data_offsets":[0,128]},...}
///
/// `__metadata__` comes first with keys in code-point order and is left out when empty; tensors follow in
/// the given order; there is no whitespace; strings are escaped as serde_json does. The JSON is padded
/// with spaces so the data section starts at a multiple of 8 bytes, as the reference writer does.
public struct SafetensorsHeader: Sendable {
    /// The tensors with their byte ranges in the data section, in the order given.
    public let tensors: [TensorInfo]
    /// The `__metadata__` map.
    public let metadata: [String: String]
    /// The bytes that start the file: the 8-byte little-endian JSON length, the JSON, and its padding.
    public let encoded: [UInt8]
    /// The size of the data section: the sum of the tensors' byte sizes.
    public let dataSize: Int

    /// Lays out `tensors` in order and serializes the header.
    ///
    /// - Parameters:
    ///   - tensors: The tensors, in the order their data will be written.
    ///   - metadata: The `__metadata__` map.
    ///   - label: How errors name the file being built.
    /// - Throws: ``SafetensorsError``: `duplicateTensorName`, `invalidTensorEntry` for the reserved name
    ///   `__metadata__`, `invalidShape` for a negative dimension, `sizeOverflow` when a size does not fit in
    ///   an `Int`, `sizeMismatch` when a sub-byte type does not fill whole bytes.
    public init(
        tensors: [(name: String, dtype: DType, shape: [Int])],
        metadata: [String: String] = [:],
        label: String = "safetensors header"
    ) throws(SafetensorsError) {
        var infos: [TensorInfo] = []
        var names = Set<String>()
        var dataSize = 0
        for (name, dtype, shape) in tensors {
            func failure(_ kind: SafetensorsError.Kind, _ detail: String) -> SafetensorsError {
                SafetensorsError(kind, file: label, tensor: name, detail: detail)
            }
            guard name != "__metadata__" else { throw failure(.invalidTensorEntry, "the name is reserved for metadata") }
            guard names.insert(name).inserted else { throw failure(.duplicateTensorName, "name appears more than once") }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw failure(.invalidShape, "shape \(shape) has a negative dimension")
            }
            let byteCount = try TensorInfo.byteCount(dtype: dtype, shape: shape, file: label, tensor: name)
            let (end, overflow) = dataSize.addingReportingOverflow(byteCount)
            guard !overflow else { throw failure(.sizeOverflow, "data section size overflows") }
            infos.append(TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: dataSize ..< end))
            dataSize = end
        }

        var json = Array("{".utf8)
        if !metadata.isEmpty {
            json.append(contentsOf: #""__metadata__":{"#.utf8)
            let entries = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, entry) in entries.enumerated() {
                if index > 0 { json.append(UInt8(ascii: ",")) }
                OrderedJSON.appendQuoted(entry.key, asciiOnly: false, to: &json)
                json.append(UInt8(ascii: ":"))
                OrderedJSON.appendQuoted(entry.value, asciiOnly: false, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        for info in infos {
            if json.count > 1 { json.append(UInt8(ascii: ",")) }
            OrderedJSON.appendQuoted(info.name, asciiOnly: false, to: &json)
            json.append(contentsOf: #":{"dtype":""#.utf8)
            json.append(contentsOf: info.dtype.rawValue.utf8)
            json.append(contentsOf: #"","shape":["#.utf8)
            json.append(contentsOf: info.shape.map(String.init).joined(separator: ",").utf8)
            json.append(contentsOf: #"],"data_offsets":["#.utf8)
            json.append(contentsOf: "\(info.dataRange.lowerBound),\(info.dataRange.upperBound)]}".utf8)
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))

        guard json.count <= SafetensorsFile.maximumHeaderSize else {
            throw SafetensorsError(
                .headerTooLarge, file: label,
                detail: "header is \(json.count) bytes, over the limit of \(SafetensorsFile.maximumHeaderSize)"
            )
        }
        guard dataSize <= Int.max - 8 - json.count else {
            throw SafetensorsError(.sizeOverflow, file: label, detail: "file size overflows")
        }
        self.tensors = infos
        self.metadata = metadata
        self.dataSize = dataSize
        encoded = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json
    }

    /// The tensors' byte ranges in the data section, in order.
    public var tensorRanges: [Range<Int>] {
        tensors.map(\.dataRange)
    }

    /// The size of the whole file: header bytes plus data.
    public var fileSize: Int {
        encoded.count + dataSize
    }
}
