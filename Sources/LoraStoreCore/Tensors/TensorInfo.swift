/// One tensor declared in a safetensors header: its name, element type, shape and where its bytes are.
///
/// `dataRange` is relative to the start of the data section (the byte after the header), as in the
/// header's `data_offsets`, so the same value describes a tensor whether the file is on disk or in memory.
public struct TensorInfo: Sendable, Hashable {
    /// The tensor's name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public var name: String
    /// The element type.
    public var dtype: DType
    /// The dimensions, outermost first; empty for a scalar.
    public var shape: [Int]
    /// The tensor's bytes inside the data section.
    public var dataRange: Range<Int>

    /// Creates a tensor description.
    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }

    /// The number of elements: the product of the shape (1 for a scalar, 0 when any dimension is 0).
    ///
    /// Tensors read by ``SafetensorsFile`` or built by ``SafetensorsHeader`` were checked not to overflow.
    public var elementCount: Int {
        shape.reduce(1, *)
    }

    /// The number of bytes of the tensor's data.
    public var byteCount: Int {
        dataRange.count
    }
}

extension TensorInfo {
    /// The byte size of a tensor of `shape` and `dtype`, computed without overflow.
    ///
    /// - Throws: ``SafetensorsError`` of kind `sizeOverflow` when the element count or byte size does not
    ///   fit in an `Int`, or `sizeMismatch` when a sub-byte type does not fill whole bytes.
    static func byteCount(dtype: DType, shape: [Int], file: String, tensor: String) throws(SafetensorsError) -> Int {
        var elementCount = 1
        for dimension in shape {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw SafetensorsError(.sizeOverflow, file: file, tensor: tensor,
                                       detail: "element count of shape \(shape) overflows")
            }
            elementCount = product
        }
        if let byteCount = dtype.byteCount(elementCount: elementCount) {
            return byteCount
        }
        if elementCount.multipliedReportingOverflow(by: dtype.bitWidth).overflow {
            throw SafetensorsError(.sizeOverflow, file: file, tensor: tensor,
                                   detail: "byte size of shape \(shape) of \(dtype.rawValue) overflows")
        }
        throw SafetensorsError(.sizeMismatch, file: file, tensor: tensor,
                               detail: "\(elementCount) elements of \(dtype.rawValue) do not fill whole bytes")
    }
}
