/// A quantized weight as it is stored: the bytes of the `<name>` tensor and, for `int8-row`, of the
/// `<name>.scale` tensor, in the layout documented on ``QuantizationScheme``.
///
/// Keeping the stored bytes (rather than decoded codes) makes writing a safetensors file a plain copy and
/// lets two quantized weights be compared code by code without any rounding of their own.
public struct QuantizedTensor: Sendable, Hashable {
    /// The scheme the bytes are laid out in.
    public let scheme: QuantizationScheme
    /// Output rows of the weight.
    public let rows: Int
    /// Input columns of the weight (values per row).
    public let columns: Int
    /// The `<name>` tensor: I8 codes for `int8-row`, ggml blocks for `q8_0` and `q4_0`.
    public let data: [UInt8]
    /// The `<name>.scale` tensor for `int8-row` (F32 little-endian, one per row); empty for the block
    /// schemes, whose scales are inside ``data``.
    public let scales: [UInt8]

    /// How two quantized versions of the same weight differ, counted on the stored integers.
    ///
    /// A code has moved when its stored integer differs. A scale that changed is counted separately and
    /// does not make the codes under it count as moved: perturbing the largest value of a row or block
    /// nudges its scale (and so every value under it by a tiny fraction) without carrying the adapter, and
    /// counting those codes would report an adapter that was rounded away as having moved everything. The
    /// share of the adapter that actually survived is measured on values by ``FidelityMeasure``.
    public struct CodeDifference: Sendable, Codable, Hashable {
        /// Codes whose stored integer differs.
        public var codesMoved: Int
        /// Codes compared (`rows × columns`).
        public var codeCount: Int
        /// Scales whose bit pattern differs (row scales for `int8-row`, block scales otherwise).
        public var scalesChanged: Int
        /// Scales compared.
        public var scaleCount: Int

        /// Creates a difference from its counts.
        public init(codesMoved: Int, codeCount: Int, scalesChanged: Int, scaleCount: Int) {
            self.codesMoved = codesMoved
            self.codeCount = codeCount
            self.scalesChanged = scalesChanged
            self.scaleCount = scaleCount
        }
    }

    /// Wraps stored bytes read from a file, checking their sizes against the scheme and shape.
    /// - Throws: ``QuantizationError`` when the shape is invalid, `columns` does not fit the scheme, or a
    ///   byte count is wrong.
    public init(
        scheme: QuantizationScheme, rows: Int, columns: Int, data: [UInt8], scales: [UInt8] = []
    ) throws(QuantizationError) {
        let layout = try Self.layout(scheme: scheme, rows: rows, columns: columns)
        guard data.count == layout.dataBytes else {
            throw .sizeMismatch(what: "\(scheme.rawValue) data", expected: layout.dataBytes, actual: data.count)
        }
        guard scales.count == layout.scaleBytes else {
            throw .sizeMismatch(what: "\(scheme.rawValue) scales", expected: layout.scaleBytes, actual: scales.count)
        }
        self.init(unchecked: scheme, rows: rows, columns: columns, data: data, scales: scales)
    }

    init(unchecked scheme: QuantizationScheme, rows: Int, columns: Int, data: [UInt8], scales: [UInt8]) {
        self.scheme = scheme
        self.rows = rows
        self.columns = columns
        self.data = data
        self.scales = scales
    }

    /// The byte sizes of the two stored tensors for a weight of this shape.
    static func layout(
        scheme: QuantizationScheme, rows: Int, columns: Int
    ) throws(QuantizationError) -> (rowBytes: Int, dataBytes: Int, scaleBytes: Int) {
        guard rows >= 0, columns >= 0, !rows.multipliedReportingOverflow(by: columns).overflow else {
            throw .invalidShape(rows: rows, columns: columns)
        }
        guard let rowBytes = scheme.rowByteCount(columns: columns) else {
            throw .rowLengthNotMultipleOfBlock(scheme: scheme, columns: columns, blockSize: scheme.blockSize ?? 1)
        }
        let scaleBytes = scheme == .int8Row ? rows * 4 : 0
        return (rowBytes, rows * rowBytes, scaleBytes)
    }

    /// The number of scales: one per row for `int8-row`, one per block otherwise.
    public var scaleCount: Int {
        guard let blockSize = scheme.blockSize else { return rows }
        return rows * (columns / blockSize)
    }

    /// The stored code of the value at `row`, `column`: the signed code for `int8-row` and `q8_0`, the
    /// unsigned nibble `0 ... 15` for `q4_0` (its value is `(code − 8) · d`).
    public func code(row: Int, column: Int) -> Int {
        precondition(row >= 0 && row < rows && column >= 0 && column < columns, "code index out of range")
        switch scheme {
        case .int8Row:
            return Int(Int8(bitPattern: data[row * columns + column]))
        case .q8_0:
            let offset = row * (columns / 32 * 34) + column / 32 * 34 + 2 + column % 32
            return Int(Int8(bitPattern: data[offset]))
        case .q4_0:
            let inBlock = column % 32
            let byte = data[row * (columns / 32 * 18) + column / 32 * 18 + 2 + inBlock % 16]
            return Int(inBlock < 16 ? byte & 0x0F : byte >> 4)
        }
    }

    /// The scale of the value at `row`, `column` as dequantization uses it (the F32 row scale, or the
    /// block's F16 `d` widened to F32).
    public func scale(row: Int, column: Int) -> Float {
        precondition(row >= 0 && row < rows && column >= 0 && column < columns, "scale index out of range")
        switch scheme {
        case .int8Row:
            let bits = UInt32(scales[row * 4]) | UInt32(scales[row * 4 + 1]) << 8
                | UInt32(scales[row * 4 + 2]) << 16 | UInt32(scales[row * 4 + 3]) << 24
            return Float(bitPattern: bits)
        case .q8_0, .q4_0:
            let blockBytes = scheme == .q8_0 ? 34 : 18
            let offset = row * (columns / 32 * blockBytes) + column / 32 * blockBytes
            return FloatConversion.float(fromFloat16: UInt16(data[offset]) | UInt16(data[offset + 1]) << 8)
        }
    }

    /// Counts the codes and scales that differ between `self` and `other` (see ``CodeDifference``).
    /// - Throws: ``QuantizationError/incompatibleTensors(_:)`` when the schemes or shapes differ.
    public func codeDifference(from other: QuantizedTensor) throws(QuantizationError) -> CodeDifference {
        guard scheme == other.scheme else {
            throw .incompatibleTensors("schemes \(scheme.rawValue) and \(other.scheme.rawValue) differ")
        }
        guard rows == other.rows, columns == other.columns else {
            throw .incompatibleTensors("shapes [\(rows), \(columns)] and [\(other.rows), \(other.columns)] differ")
        }
        var moved = 0
        var changed = 0
        switch scheme {
        case .int8Row:
            for index in data.indices where data[index] != other.data[index] { moved += 1 }
            for row in 0..<rows where scales[row * 4 ..< row * 4 + 4] != other.scales[row * 4 ..< row * 4 + 4] {
                changed += 1
            }
        case .q8_0, .q4_0:
            let blockBytes = scheme == .q8_0 ? 34 : 18
            var offset = 0
            while offset < data.count {
                if data[offset] != other.data[offset] || data[offset + 1] != other.data[offset + 1] {
                    changed += 1
                }
                for index in offset + 2 ..< offset + blockBytes {
                    let mine = data[index]
                    let theirs = other.data[index]
                    if scheme == .q8_0 {
                        moved += mine != theirs ? 1 : 0
                    } else {
                        moved += (mine & 0x0F != theirs & 0x0F ? 1 : 0) + (mine >> 4 != theirs >> 4 ? 1 : 0)
                    }
                }
                offset += blockBytes
            }
        }
        return CodeDifference(codesMoved: moved, codeCount: rows * columns, scalesChanged: changed, scaleCount: scaleCount)
    }
}
