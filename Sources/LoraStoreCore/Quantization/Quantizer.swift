/// Quantizes F32 weights into the schemes of ``QuantizationScheme`` and back, bit-exact to their
/// definitions.
///
/// Every arithmetic step is the F32 operation the definition names, in the same order, so the bytes are
/// reproducible anywhere: `int8-row` divides by the row scale and rounds half to even; `q8_0` and `q4_0`
/// follow ggml's `quantize_row_q8_0_ref` and `quantize_row_q4_0_ref` (scale computed in F32, `id = d ≠ 0 ?
/// 1/d : 0`, codes from `x · id`, the scale stored as F16 rounded to nearest even), so ggml writes the
/// same bytes for the same row. Rows are independent and processed on all cores; the result does not
/// depend on the number of cores.
///
/// The bytes were checked against ggml's reference functions compiled from C: identical for every block
/// when the C is compiled as written, with `x · id` rounded before `+ 8.5` (no FMA contraction). A GCC
/// build with `-march=haswell` fuses that into an FMA and can differ on exact q4_0 ties.
///
/// Where C leaves ggml's float-to-`int8_t` conversion undefined (only when a block's largest magnitude is
/// below about 1e-36, so `1/d` overflows or `x · id` leaves the int8 range), the codes are what scalar
/// x86-64 code gives (`cvttss2si`: out-of-range becomes `INT32_MIN`, whose low byte is 0; GCC builds and
/// unvectorized Clang builds agree, auto-vectorized Clang builds write 0x80). Such blocks store `d = 0` in
/// F16, so they dequantize to zeros in every case.
public enum Quantizer {
    // MARK: Quantize

    /// Quantizes a row-major `[rows, columns]` F32 weight.
    /// - Throws: ``QuantizationError/nonFiniteValue(row:column:)`` naming the first NaN or infinity,
    ///   ``QuantizationError/scaleOutOfRange(scheme:row:column:)`` naming the first `q8_0`/`q4_0` block
    ///   whose scale F16 cannot hold,
    ///   ``QuantizationError/rowLengthNotMultipleOfBlock(scheme:columns:blockSize:)`` when `columns` is
    ///   not a multiple of 32 for `q8_0`/`q4_0`, or a shape/size error when `values` does not hold
    ///   `rows × columns` values.
    public static func quantize(
        _ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, scheme: QuantizationScheme
    ) throws(QuantizationError) -> QuantizedTensor {
        let layout = try QuantizedTensor.layout(scheme: scheme, rows: rows, columns: columns)
        guard values.count == rows * columns else {
            throw .sizeMismatch(what: "input weight", expected: rows * columns, actual: values.count)
        }
        var data = [UInt8](repeating: 0, count: layout.dataBytes)
        var scales = [UInt8](repeating: 0, count: layout.scaleBytes)
        let ranges = ParallelRows.ranges(rows: rows, valuesPerRow: columns)
        var findings = [Findings](repeating: Findings(), count: ranges.count)
        data.withUnsafeMutableBytes { data in
            scales.withUnsafeMutableBytes { scales in
                findings.withUnsafeMutableBufferPointer { findings in
                    nonisolated(unsafe) let findings = findings
                    ParallelRows.run(ranges) { task, range in
                        for row in range {
                            let source = UnsafeBufferPointer(rebasing: values[row * columns ..< (row + 1) * columns])
                            if let column = firstNonFinite(source) {
                                findings[task].nonFinite = row * columns + column
                                return
                            }
                            let output = data.baseAddress.map { $0 + row * layout.rowBytes }
                            switch scheme {
                            case .int8Row:
                                let scale = output.map { quantizeInt8Row(source, into: $0) } ?? 0
                                scales.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: row * 4, as: UInt32.self)
                            case .q8_0, .q4_0:
                                guard let output else { break }
                                let overflow = scheme == .q8_0
                                    ? quantizeQ8_0Row(source, into: output) : quantizeQ4_0Row(source, into: output)
                                if let block = overflow, findings[task].scaleOverflow == Int.max {
                                    findings[task].scaleOverflow = row * columns + block * 32
                                }
                            }
                        }
                    }
                }
            }
        }
        if let bad = findings.map(\.nonFinite).min(), bad != Int.max {
            throw .nonFiniteValue(row: bad / columns, column: bad % columns)
        }
        if let overflow = findings.map(\.scaleOverflow).min(), overflow != Int.max {
            throw .scaleOutOfRange(scheme: scheme, row: overflow / columns, column: overflow % columns)
        }
        return QuantizedTensor(unchecked: scheme, rows: rows, columns: columns, data: data, scales: scales)
    }

    /// Merges an F32 delta into a quantized weight and quantizes the result again in the same scheme:
    /// `quantize(dequantize(base) + delta)`, the sum computed in F32.
    ///
    /// This is where small adapters get lost: a delta well below the quantization step moves no code.
    /// - Throws: ``QuantizationError`` when `delta` does not hold `rows × columns` values or the sum is not
    ///   finite.
    public static func requantize(
        _ base: QuantizedTensor, adding delta: UnsafeBufferPointer<Float>
    ) throws(QuantizationError) -> QuantizedTensor {
        guard delta.count == base.rows * base.columns else {
            throw .sizeMismatch(what: "delta", expected: base.rows * base.columns, actual: delta.count)
        }
        var merged = dequantize(base)
        for index in merged.indices { merged[index] += delta[index] }
        return try merged.withUnsafeBufferPointer { merged throws(QuantizationError) in
            try quantize(merged, rows: base.rows, columns: base.columns, scheme: base.scheme)
        }
    }

    // MARK: Dequantize

    /// The F32 values a quantized weight stands for, row-major `[rows, columns]`: `code · scale` for
    /// `int8-row` and `q8_0`, `(code − 8) · d` for `q4_0`, each one F32 multiplication (as ggml's
    /// `dequantize_row_*`).
    public static func dequantize(_ tensor: QuantizedTensor) -> [Float] {
        let count = tensor.rows * tensor.columns
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(tensor, into: buffer)
            initialized = count
        }
    }

    /// Writes the F32 values of `tensor` into `destination`, which must hold exactly `rows × columns`
    /// values.
    /// - Throws: ``QuantizationError/sizeMismatch(what:expected:actual:)`` for a wrongly sized destination.
    public static func dequantize(
        _ tensor: QuantizedTensor, into destination: UnsafeMutableBufferPointer<Float>
    ) throws(QuantizationError) {
        guard destination.count == tensor.rows * tensor.columns else {
            throw .sizeMismatch(what: "destination", expected: tensor.rows * tensor.columns, actual: destination.count)
        }
        fill(tensor, into: destination)
    }

    private static func fill(_ tensor: QuantizedTensor, into destination: UnsafeMutableBufferPointer<Float>) {
        guard let output = destination.baseAddress else { return }
        nonisolated(unsafe) let values = output
        let columns = tensor.columns
        let rowBytes = tensor.scheme.rowByteCount(columns: columns) ?? 0
        tensor.data.withUnsafeBytes { data in
            tensor.scales.withUnsafeBytes { scales in
                ParallelRows.run(ParallelRows.ranges(rows: tensor.rows, valuesPerRow: columns)) { _, range in
                    guard let data = data.baseAddress else { return }
                    for row in range {
                        let source = data + row * rowBytes
                        let target = values + row * columns
                        switch tensor.scheme {
                        case .int8Row:
                            let scale = Float(bitPattern: UInt32(littleEndian: scales.loadUnaligned(fromByteOffset: row * 4, as: UInt32.self)))
                            for column in 0..<columns {
                                target[column] = Float(Int8(bitPattern: source.load(fromByteOffset: column, as: UInt8.self))) * scale
                            }
                        case .q8_0:
                            for block in 0 ..< columns / 32 {
                                let record = source + block * 34
                                let d = blockScale(record)
                                for j in 0..<32 {
                                    target[block * 32 + j] = Float(Int8(bitPattern: record.load(fromByteOffset: 2 + j, as: UInt8.self))) * d
                                }
                            }
                        case .q4_0:
                            for block in 0 ..< columns / 32 {
                                let record = source + block * 18
                                let d = blockScale(record)
                                for j in 0..<16 {
                                    let byte = record.load(fromByteOffset: 2 + j, as: UInt8.self)
                                    target[block * 32 + j] = Float(Int32(byte & 0x0F) - 8) * d
                                    target[block * 32 + j + 16] = Float(Int32(byte >> 4) - 8) * d
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Row kernels

    /// The column of the first NaN or infinity in `row`, found by the all-ones exponent.
    private static func firstNonFinite(_ row: UnsafeBufferPointer<Float>) -> Int? {
        var found: UInt32 = 0
        for value in row {
            found |= value.bitPattern & 0x7F80_0000 == 0x7F80_0000 ? 1 : 0
        }
        guard found != 0 else { return nil }
        return row.firstIndex { !$0.isFinite }
    }

    /// `int8-row`: `scale = max|w| / 127`, codes `w / scale` rounded half to even and clamped to ±127; a
    /// zero scale gives zero codes. Returns the scale.
    private static func quantizeInt8Row(_ row: UnsafeBufferPointer<Float>, into output: UnsafeMutableRawPointer) -> Float {
        let codes = output.assumingMemoryBound(to: UInt8.self)
        var amax: Float = 0
        for value in row { amax = Swift.max(amax, abs(value)) }
        let scale = amax / 127
        guard scale != 0 else {
            codes.update(repeating: 0, count: row.count)
            return scale
        }
        for column in 0 ..< row.count {
            codes[column] = lowByte(Swift.min(127, Swift.max(-127, (row[column] / scale).rounded(.toNearestOrEven))))
        }
        return scale
    }

    /// What one task of ``quantize(_:rows:columns:scheme:)`` found, as element indices (`Int.max`: nothing):
    /// its first NaN or infinity, and the first value of its first block whose scale F16 cannot hold.
    private struct Findings {
        var nonFinite = Int.max
        var scaleOverflow = Int.max
    }

    /// One row of `block_q8_0` records, as `quantize_row_q8_0_ref`. Returns the first block whose scale is
    /// infinite in F16, if any.
    private static func quantizeQ8_0Row(_ row: UnsafeBufferPointer<Float>, into output: UnsafeMutableRawPointer) -> Int? {
        var overflow: Int?
        for block in 0 ..< row.count / 32 {
            let x = UnsafeBufferPointer(rebasing: row[block * 32 ..< block * 32 + 32])
            let record = output + block * 34
            let codes = (record + 2).assumingMemoryBound(to: UInt8.self)
            var amax: Float = 0
            for value in x { amax = Swift.max(amax, abs(value)) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            if !storeBlockScale(d, record), overflow == nil { overflow = block }
            if amax * id < exactIntegerLimit {
                for j in 0 ..< 32 { codes[j] = lowByte((x[j] * id).rounded(.toNearestOrAwayFromZero)) }
            } else {
                for j in 0 ..< 32 { codes[j] = cInt8((x[j] * id).rounded(.toNearestOrAwayFromZero)) }
            }
        }
        return overflow
    }

    /// One row of `block_q4_0` records, as `quantize_row_q4_0_ref`: `max` is the first value of largest
    /// magnitude, `d = max / −8`, code `min(15, (int8_t)(x · id + 8.5))`. Returns the first block whose
    /// scale is infinite in F16, if any.
    private static func quantizeQ4_0Row(_ row: UnsafeBufferPointer<Float>, into output: UnsafeMutableRawPointer) -> Int? {
        var overflow: Int?
        for block in 0 ..< row.count / 32 {
            let x = UnsafeBufferPointer(rebasing: row[block * 32 ..< block * 32 + 32])
            let record = output + block * 18
            let codes = (record + 2).assumingMemoryBound(to: UInt8.self)
            var amax: Float = 0
            var max: Float = 0
            for value in x where amax < abs(value) {
                amax = abs(value)
                max = value
            }
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            if !storeBlockScale(d, record), overflow == nil { overflow = block }
            if amax * abs(id) < exactIntegerLimit {
                for j in 0 ..< 16 {
                    let low = nibble(lowByte((x[j] * id + 8.5).rounded(.towardZero)))
                    let high = nibble(lowByte((x[j + 16] * id + 8.5).rounded(.towardZero)))
                    codes[j] = low | high << 4
                }
            } else {
                for j in 0 ..< 16 {
                    codes[j] = nibble(cInt8(x[j] * id + 8.5)) | nibble(cInt8(x[j + 16] * id + 8.5)) << 4
                }
            }
        }
        return overflow
    }

    /// Below this magnitude every F32 product `x · id` converts exactly through ``lowByte(_:)``.
    private static let exactIntegerLimit: Float = 0x1p21

    /// The low byte of the two's-complement integer `value` (integral, |value| < 2²²): adding 1.5 · 2²³
    /// places the integer in the low mantissa bits. Branch-free, so the code loops vectorize.
    @inline(__always)
    private static func lowByte(_ value: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: (value + 0x1.8p23).bitPattern)
    }

    /// `(uint8_t)MIN(15, (int8_t)code)` for the low byte `code` of the truncated value.
    @inline(__always)
    private static func nibble(_ code: UInt8) -> UInt8 {
        UInt8(bitPattern: Swift.min(15, Int8(bitPattern: code)))
    }

    /// The byte C's `(int8_t)value` leaves on x86-64 for any value: truncation toward zero through a
    /// 32-bit integer, where NaN and out-of-range values become `INT32_MIN` (low byte 0).
    private static func cInt8(_ value: Float) -> UInt8 {
        guard value >= -2_147_483_648, value < 2_147_483_648 else { return 0 }
        return UInt8(truncatingIfNeeded: Int32(value))
    }

    @inline(__always)
    /// Stores a block's scale as F16 (nearest even) and returns whether it is finite there.
    private static func storeBlockScale(_ d: Float, _ record: UnsafeMutableRawPointer) -> Bool {
        let bits = FloatConversion.float16(from: d)
        record.storeBytes(of: bits.littleEndian, as: UInt16.self)
        return bits & 0x7C00 != 0x7C00
    }

    @inline(__always)
    private static func blockScale(_ record: UnsafeRawPointer) -> Float {
        FloatConversion.float(fromFloat16: UInt16(littleEndian: record.loadUnaligned(as: UInt16.self)))
    }
}
