/// How one weight of a quantized base is stored, as its manifest records it.
///
/// The manifest's tensor list holds the tensors as stored (see ``QuantizationScheme`` for the layout): the
/// `<name>` tensor with codes or ggml blocks and, for `int8-row`, the `<name>.scale` tensor. This record
/// keeps what the weight stands for, its logical type and shape, so adapters are checked against the
/// weight rather than its codes, and the weight can be written dequantized. A pulled quantized base carries
/// the same records in each file's `__metadata__` under `lorastore.quantization` (JSON, weight name → record),
/// so a reader knows which tensors hold codes.
public struct QuantizedWeight: Sendable, Hashable, Codable {
    /// The scheme of the stored bytes.
    public var scheme: QuantizationScheme
    /// The type of the weight before quantization (F32, F16 or BF16).
    public var dtype: DType
    /// The logical shape `[rows, columns]`.
    public var shape: [Int]
    /// The companion tensor holding the row scales (`<name>.scale`, `int8-row` only).
    public var scaleTensor: String?

    /// Records a weight of `shape` and `dtype` stored in `scheme`.
    public init(scheme: QuantizationScheme, dtype: DType, shape: [Int], scaleTensor: String? = nil) {
        self.scheme = scheme
        self.dtype = dtype
        self.shape = shape
        self.scaleTensor = scaleTensor
    }

    /// Output rows of the weight.
    public var rows: Int { shape.first ?? 0 }
    /// Input columns of the weight.
    public var columns: Int { shape.count == 2 ? shape[1] : 0 }
}
