/// Why a weight could not be quantized, dequantized or compared.
public enum QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The value at `row`, `column` is NaN or infinite; no scheme can store it, and letting it through
    /// would poison the scale of its whole row or block. The first such value in row-major order is named.
    case nonFiniteValue(row: Int, column: Int)
    /// The block of 32 values starting at `row`, `column` needs a scale larger than F16's largest finite
    /// value (65504), where `q8_0` and `q4_0` store it: its largest magnitude is beyond 65504 · 127 (`q8_0`)
    /// or 65504 · 8 (`q4_0`). ggml would store an infinite scale, which dequantizes to infinities and NaN.
    case scaleOutOfRange(scheme: QuantizationScheme, row: Int, column: Int)
    /// `columns` is not a multiple of the scheme's block size (32 for `q8_0` and `q4_0`).
    case rowLengthNotMultipleOfBlock(scheme: QuantizationScheme, columns: Int, blockSize: Int)
    /// `rows` or `columns` is negative, or their product overflows.
    case invalidShape(rows: Int, columns: Int)
    /// A buffer holds `actual` elements (or bytes) where `expected` were required.
    case sizeMismatch(what: String, expected: Int, actual: Int)
    /// Two quantized tensors cannot be compared because their schemes or shapes differ.
    case incompatibleTensors(String)
    /// A tensor of a model cannot be quantized as asked (named, with the reason).
    case tensorRefused(tensor: String, reason: String)

    public var description: String {
        switch self {
        case .nonFiniteValue(let row, let column):
            "cannot quantize a non-finite value (NaN or infinity) at row \(row), column \(column)"
        case .scaleOutOfRange(let scheme, let row, let column):
            "\(scheme.rawValue) cannot store the block at row \(row), columns \(column)..<\(column + 32): its largest "
                + "magnitude needs a scale beyond F16's range (65504)"
        case .rowLengthNotMultipleOfBlock(let scheme, let columns, let blockSize):
            "\(scheme.rawValue) needs rows whose length is a multiple of \(blockSize); this weight has \(columns) columns"
        case .invalidShape(let rows, let columns):
            "invalid weight shape [\(rows), \(columns)]"
        case .sizeMismatch(let what, let expected, let actual):
            "\(what) holds \(actual) where \(expected) were expected"
        case .incompatibleTensors(let reason):
            "cannot compare quantized tensors: \(reason)"
        case .tensorRefused(let tensor, let reason):
            "cannot quantize \(tensor): \(reason)"
        }
    }
}
