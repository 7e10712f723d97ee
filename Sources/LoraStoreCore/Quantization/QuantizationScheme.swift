/// The integer formats a merged weight can be stored in, each defined bit for bit.
///
/// A weight is a row-major matrix of `rows` output rows by `columns` input columns (the PyTorch
/// `[out_features, in_features]` layout). Every scheme quantizes along the input dimension, one row at a
/// time, so rows are independent.
///
/// ## Stored layout in safetensors
///
/// A quantized weight named `<name>` is written as follows (all multi-byte values little-endian):
///
/// | Scheme     | Tensor         | DType | Shape                          | Contents                              |
/// |------------|----------------|-------|--------------------------------|---------------------------------------|
/// | `int8-row` | `<name>`       | I8    | `[rows, columns]`              | codes, row-major                      |
/// | `int8-row` | `<name>.scale` | F32   | `[rows]`                       | one scale per row                     |
/// | `q8_0`     | `<name>`       | U8    | `[rows, columns / 32 * 34]`    | ggml `block_q8_0` records, row-major  |
/// | `q4_0`     | `<name>`       | U8    | `[rows, columns / 32 * 18]`    | ggml `block_q4_0` records, row-major  |
///
/// A `block_q8_0` is the F16 scale `d` (2 bytes) followed by 32 signed codes; value `j` is `q[j] · d`.
/// A `block_q4_0` is the F16 scale `d` followed by 16 bytes; byte `j` holds code `q[j]` in its low nibble
/// and `q[j + 16]` in its high nibble, and value `j` is `(q[j] − 8) · d`. Blocks follow one another along
/// the row with no padding, so each row's bytes are exactly what ggml's `quantize_row_*_ref` writes for it
/// (GGUF lists the dimensions innermost first, as `[columns, rows]`; llama.cpp's converter may also reorder
/// some weights' rows, such as Llama's q and k projections for its rotary embedding).
public enum QuantizationScheme: String, Sendable, Codable, CaseIterable {
    /// One F32 scale per output row, `scale = max|row| / 127`; each code is `w / scale` rounded to
    /// nearest, ties to even, clamped to ±127. A row whose scale is 0 (all zeros, or a maximum so small
    /// that the division underflows) stores scale 0 and all codes 0.
    case int8Row = "int8-row"
    /// ggml's Q8_0: blocks of 32 with an F16 scale `d = amax / 127` and codes `roundf(x / d)` (ties away
    /// from zero), exactly as `quantize_row_q8_0_ref` computes them.
    case q8_0
    /// ggml's Q4_0: blocks of 32 with an F16 scale `d = max / −8`, where `max` is the first value of
    /// largest magnitude, and 4-bit codes `min(15, trunc(x / d + 8.5))`, exactly as
    /// `quantize_row_q4_0_ref` computes them (without an importance matrix).
    case q4_0

    /// The suffix of the companion tensor holding the row scales (`int8-row` only).
    public static let scaleSuffix = ".scale"

    /// The number of consecutive values of a row that share one scale; `nil` for `int8-row`, whose scale
    /// covers the whole row.
    public var blockSize: Int? {
        switch self {
        case .int8Row: nil
        case .q8_0, .q4_0: 32
        }
    }

    /// The bytes of one stored block (F16 scale and codes); `nil` for `int8-row`, which stores codes and
    /// scales in separate tensors.
    public var bytesPerBlock: Int? {
        switch self {
        case .int8Row: nil
        case .q8_0: 34
        case .q4_0: 18
        }
    }

    /// The element type of the `<name>` tensor: I8 codes for `int8-row`, raw U8 blocks otherwise.
    public var storedDType: DType {
        switch self {
        case .int8Row: .i8
        case .q8_0, .q4_0: .u8
        }
    }

    /// Whether a row of `columns` values can be stored: any length for `int8-row`, a multiple of 32 for the
    /// block schemes (ggml has no partial blocks).
    public func accepts(columns: Int) -> Bool {
        guard columns >= 0 else { return false }
        guard let blockSize else { return true }
        return columns % blockSize == 0
    }

    /// The bytes of one stored row in the `<name>` tensor, or `nil` when `columns` is not accepted.
    public func rowByteCount(columns: Int) -> Int? {
        guard accepts(columns: columns) else { return nil }
        guard let blockSize, let bytesPerBlock else { return columns }
        return columns / blockSize * bytesPerBlock
    }

    /// The shape of the `<name>` tensor for a `[rows, columns]` weight, or `nil` when `columns` is not
    /// accepted.
    public func storedShape(rows: Int, columns: Int) -> [Int]? {
        guard let rowBytes = rowByteCount(columns: columns) else { return nil }
        return [rows, rowBytes]
    }

    /// The shape of the `<name>.scale` tensor (`[rows]` F32 for `int8-row`), or `nil` for schemes whose
    /// scales live inside the blocks.
    public func scaleShape(rows: Int) -> [Int]? {
        self == .int8Row ? [rows] : nil
    }
}
