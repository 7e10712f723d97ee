import Testing
import LoraStoreCore

/// Hand-computed blocks for every scheme, error cases and round-trip bounds.
@Suite struct QuantizerTests {
    // MARK: int8-row

    @Test func int8RowRoundsHalfToEvenAndStoresF32Scales() throws {
        let tiny = Float.leastNonzeroMagnitude
        let values: [Float] = [
            127, 2.5, -2.5, 3.5, 0.5, -0.5, 1.5, -127,  // scale 1: ties go to even
            254, 5, 7, -5, -7, 1, -1, -254,  // scale 2: w / 2 = ±2.5, ±3.5, ±0.5
            0, 0, -0, 0, 0, 0, 0, 0,  // all zero: scale 0, codes 0
            190 * tiny, 95 * tiny, -190 * tiny, 0, 0, 0, 0, 0,  // scale rounds to 1 ulp: 190 clamps to 127
            tiny, 0, 0, 0, 0, 0, 0, 0,  // scale underflows to 0: codes 0
        ]
        let quantized = try quantize(values, rows: 5, columns: 8, .int8Row)
        #expect(quantized.data == [
            0x7F, 0x02, 0xFE, 0x04, 0x00, 0x00, 0x02, 0x81,
            0x7F, 0x02, 0x04, 0xFE, 0xFC, 0x00, 0x00, 0x81,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x7F, 0x5F, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ])
        #expect(quantized.scales == [
            0x00, 0x00, 0x80, 0x3F,  // 1.0
            0x00, 0x00, 0x00, 0x40,  // 2.0
            0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00,  // the smallest subnormal
            0x00, 0x00, 0x00, 0x00,
        ])
        #expect(quantized.code(row: 0, column: 2) == -2)
        #expect(quantized.scale(row: 1, column: 0) == 2)
        #expect(Quantizer.dequantize(quantized)[0 ..< 16] == [
            127, 2, -2, 4, 0, 0, 2, -127,
            254, 4, 8, -4, -8, 0, 0, -254,
        ])
    }

    // MARK: q8_0

    @Test func q8_0RoundsHalvesAwayFromZero() throws {
        var values: [Float] = [127, -127, 2.5, -2.5, 0.5, -0.5, 1.5, 126.5, -126.5, 0.49]
        values += (10 ..< 32).map { Float($0 - 20) }
        let quantized = try quantize(values, rows: 1, columns: 32, .q8_0)
        let codes: [Int8] = [127, -127, 3, -3, 1, -1, 2, 127, -127, 0] + (10 ..< 32).map { Int8($0 - 20) }
        #expect(quantized.data == [0x00, 0x3C] + codes.map { UInt8(bitPattern: $0) })
        #expect(quantized.data.count == 34)
    }

    /// `d = 1/127` is stored as F16 0x2008 (0.0078735…), while the codes use the F32 `id`; a lone −max gives
    /// −127.
    @Test func q8_0StoresTheScaleAsF16AndCodesFromTheF32Reciprocal() throws {
        var values = [Float](repeating: 0, count: 32)
        values[0] = -1
        values[1] = 0.5
        values[2] = -0.25
        values[3] = 0.75
        let quantized = try quantize(values, rows: 1, columns: 32, .q8_0)
        var expected: [UInt8] = [0x08, 0x20, 0x81, 0x40, 0xE0, 0x5F]
        expected += [UInt8](repeating: 0, count: 28)
        #expect(quantized.data == expected)
        #expect(quantized.scale(row: 0, column: 31) == Float(Float16(bitPattern: 0x2008)))
    }

    // MARK: q4_0

    /// The first value of largest magnitude is −8, so `d = 1` and codes are `min(15, trunc(x + 8.5))`.
    @Test func q4_0TruncatesClampsAndPacksNibbles() throws {
        let quantized = try quantize(q4Block(firstMax: -8), rows: 1, columns: 32, .q4_0)
        #expect(quantized.data == [
            0x00, 0x3C,
            0x19, 0x20, 0x3F, 0x48, 0x57, 0x69, 0x78, 0x8B,
            0x95, 0xA4, 0xBF, 0xCF, 0xD9, 0xEA, 0xFB, 0xFC,
        ])
        #expect(quantized.code(row: 0, column: 2) == 15)
        #expect(quantized.code(row: 0, column: 16) == 1)
    }

    /// Same magnitudes with +8 first: `d = −1`, so every code mirrors and −8 is the value clamped to 15.
    @Test func q4_0TakesTheFirstValueOfLargestMagnitude() throws {
        let quantized = try quantize(q4Block(firstMax: 8), rows: 1, columns: 32, .q4_0)
        #expect(quantized.data == [
            0x00, 0xBC,
            0xF7, 0xE0, 0xDF, 0xC8, 0xB9, 0xA8, 0x99, 0x85,
            0x7C, 0x6C, 0x51, 0x41, 0x37, 0x26, 0x15, 0x04,
        ])
        let dequantized = Quantizer.dequantize(quantized)
        #expect(dequantized[1] == 8)
        #expect(dequantized[2] == -7)
    }

    /// With `max = 52`, `d = −6.5` and `29.25 · id` rounds to exactly −4.5 in F32, so the code is
    /// `trunc(4.0) = 4`; a fused multiply-add would give `trunc(3.9999998) = 3`. The bytes are those of
    /// ggml's `quantize_row_q4_0_ref` built without FMA contraction.
    @Test func q4_0RoundsTheProductBeforeAddingTheOffset() throws {
        let values: [Float] = [
            27.75, 40.75, -36.0, -0.25, -36.5, -38.0, -15.25, -50.75, 26.75, 40.0, -1.0, 4.25, -10.25, 8.75,
            29.25, 43.25, 38.75, -30.0, -49.25, -46.5, -13.75, 28.0, 52.0, -26.0, 3.25, -52.0, 15.75, -1.25,
            11.25, -24.0, -1.0, 21.5,
        ]
        let quantized = try quantize(values, rows: 1, columns: 32, .q4_0)
        #expect(quantized.data == [
            0x80, 0xC6, 0x24, 0xD2, 0xFE, 0xF8, 0xAE, 0x4E, 0x0A, 0xCF,
            0x84, 0xF2, 0x68, 0x87, 0x6A, 0xC7, 0x84, 0x51,
        ])
        #expect(quantized.code(row: 0, column: 14) == 4)
    }

    // MARK: Zero blocks and layout

    @Test func zeroBlocksFollowGgml() throws {
        let zeros = [Float](repeating: 0, count: 64)
        let q8 = try quantize(zeros, rows: 1, columns: 64, .q8_0)
        #expect(q8.data == [UInt8](repeating: 0, count: 68))
        let q4 = try quantize(zeros, rows: 1, columns: 64, .q4_0)
        let block: [UInt8] = [0x00, 0x80] + [UInt8](repeating: 0x88, count: 16)  // d = 0 / −8 = −0.0
        #expect(q4.data == block + block)
        #expect(Quantizer.dequantize(q4) == zeros)
    }

    @Test func storedShapesFollowTheDocumentedLayout() throws {
        #expect(QuantizationScheme.int8Row.storedShape(rows: 4, columns: 40) == [4, 40])
        #expect(QuantizationScheme.int8Row.scaleShape(rows: 4) == [4])
        #expect(QuantizationScheme.q8_0.storedShape(rows: 4, columns: 64) == [4, 68])
        #expect(QuantizationScheme.q4_0.storedShape(rows: 4, columns: 64) == [4, 36])
        #expect(QuantizationScheme.q4_0.storedShape(rows: 4, columns: 40) == nil)
        #expect(QuantizationScheme.q8_0.scaleShape(rows: 4) == nil)
        #expect(QuantizationScheme.int8Row.storedDType == .i8)
        #expect(QuantizationScheme.q8_0.storedDType == .u8)
        #expect(QuantizationScheme(rawValue: "int8-row") == .int8Row)

        let values = (0 ..< 128).map { Float($0 % 7) - 3 }
        let q8 = try quantize(values, rows: 2, columns: 64, .q8_0)
        #expect(q8.data.count == 2 * 68 && q8.scales.isEmpty)
        let int8 = try quantize(values, rows: 2, columns: 64, .int8Row)
        #expect(int8.data.count == 128 && int8.scales.count == 8)
        #expect(try QuantizedTensor(scheme: .q8_0, rows: 2, columns: 64, data: q8.data) == q8)
        #expect(throws: QuantizationError.sizeMismatch(what: "q4_0 data", expected: 72, actual: 136)) {
            try QuantizedTensor(scheme: .q4_0, rows: 2, columns: 64, data: q8.data)
        }
    }

    // MARK: Refusals

    @Test(arguments: QuantizationScheme.allCases)
    func nonFiniteValuesAreRefusedByPosition(scheme: QuantizationScheme) throws {
        var values = [Float](repeating: 1, count: 64)
        values[32 + 5] = .nan
        #expect(throws: QuantizationError.nonFiniteValue(row: 1, column: 5)) {
            try quantize(values, rows: 2, columns: 32, scheme)
        }
        values[31] = -.infinity
        #expect(throws: QuantizationError.nonFiniteValue(row: 0, column: 31)) {
            try quantize(values, rows: 2, columns: 32, scheme)
        }
    }

    /// `q8_0` and `q4_0` store a block's scale as F16: a finite value whose scale would be infinite there
    /// (largest magnitude above 65504 · 127, or 65504 · 8) is refused by block; just below, it is stored, and
    /// `int8-row`, whose scales are F32, takes it.
    @Test(arguments: [(QuantizationScheme.q8_0, Float(8_000_000)), (.q4_0, 500_000)])
    func blocksWhoseScaleF16CannotHoldAreRefusedByPosition(scheme: QuantizationScheme, largestStorable: Float) throws {
        var values = [Float](repeating: 1, count: 2 * 64)
        values[64 + 32 + 3] = largestStorable
        let stored = try quantize(values, rows: 2, columns: 64, scheme)
        #expect(Quantizer.dequantize(stored).allSatisfy { $0.isFinite })
        values[64 + 32 + 3] = 10_000_000
        #expect(throws: QuantizationError.scaleOutOfRange(scheme: scheme, row: 1, column: 32)) {
            try quantize(values, rows: 2, columns: 64, scheme)
        }
        #expect(Quantizer.dequantize(try quantize(values, rows: 2, columns: 64, .int8Row)).allSatisfy { $0.isFinite })
    }

    @Test(arguments: [QuantizationScheme.q8_0, .q4_0])
    func rowsThatAreNotWholeBlocksAreRefused(scheme: QuantizationScheme) throws {
        let values = [Float](repeating: 1, count: 96)
        #expect(throws: QuantizationError.rowLengthNotMultipleOfBlock(scheme: scheme, columns: 48, blockSize: 32)) {
            try quantize(values, rows: 2, columns: 48, scheme)
        }
        #expect(throws: Never.self) { try quantize(values, rows: 2, columns: 48, .int8Row) }
    }

    @Test func wrongSizesAreRefused() throws {
        #expect(throws: QuantizationError.sizeMismatch(what: "input weight", expected: 64, actual: 32)) {
            try quantize([Float](repeating: 0, count: 32), rows: 2, columns: 32, .q8_0)
        }
        let tensor = try quantize([Float](repeating: 1, count: 32), rows: 1, columns: 32, .q4_0)
        var destination = [Float](repeating: 0, count: 31)
        #expect(throws: QuantizationError.sizeMismatch(what: "destination", expected: 32, actual: 31)) {
            try destination.withUnsafeMutableBufferPointer { try Quantizer.dequantize(tensor, into: $0) }
        }
    }

    // MARK: Round trips

    @Test func roundTripErrorsStayWithinHalfAStep() throws {
        let rows = 16
        let columns = 256
        var random = UniformSource(seed: 7)
        let values = (0 ..< rows * columns).map { index in
            random.next() * Float(1 << (index / columns % 5))  // rows of different magnitudes
        }
        for scheme in QuantizationScheme.allCases {
            let quantized = try quantize(values, rows: rows, columns: columns, scheme)
            let restored = Quantizer.dequantize(quantized)
            let groupSize = scheme.blockSize ?? columns
            for group in 0 ..< values.count / groupSize {
                let range = group * groupSize ..< (group + 1) * groupSize
                let amax = values[range].map(abs).max() ?? 0
                let bound: Float = switch scheme {
                case .int8Row: amax / 127 * 0.5 * (1 + 1e-6)
                case .q8_0: amax / 127 * 0.5 + amax / 2048 + 1e-6 * amax
                case .q4_0: amax / 8 * (1 + 1.0 / 256) + 1e-6 * amax  // −max clamps from 16 to 15
                }
                for index in range {
                    #expect(abs(restored[index] - values[index]) <= bound, "\(scheme) at \(index)")
                }
            }
        }
    }

    /// Rows are processed in parallel tasks; the bytes equal those of quantizing each row alone.
    @Test(arguments: QuantizationScheme.allCases)
    func parallelQuantizationMatchesRowByRow(scheme: QuantizationScheme) throws {
        let rows = 96
        let columns = 1024
        var random = UniformSource(seed: 11)
        let values = (0 ..< rows * columns).map { _ in random.next() * 0.05 }
        let whole = try quantize(values, rows: rows, columns: columns, scheme)
        var data: [UInt8] = []
        var scales: [UInt8] = []
        for row in 0 ..< rows {
            let single = try quantize(Array(values[row * columns ..< (row + 1) * columns]), rows: 1, columns: columns, scheme)
            data += single.data
            scales += single.scales
        }
        #expect(whole.data == data)
        #expect(whole.scales == scales)
        var restored = [Float](repeating: .nan, count: rows * columns)
        try restored.withUnsafeMutableBufferPointer { try Quantizer.dequantize(whole, into: $0) }
        #expect(restored == Quantizer.dequantize(whole))
    }

    // MARK: Code differences

    @Test func codeDifferencesCountCodesAndScalesSeparately() throws {
        var values = (0 ..< 64).map { Float($0 % 9) - 4 }
        let before = try quantize(values, rows: 2, columns: 32, .q4_0)
        values[20] += 1  // one code moves (high nibble of byte 4), scale unchanged
        values[32] = -8  // the second block's largest value grows: its scale changes
        let after = try quantize(values, rows: 2, columns: 32, .q4_0)
        let difference = try after.codeDifference(from: before)
        #expect(difference.codeCount == 64)
        #expect(difference.scaleCount == 2)
        #expect(difference.scalesChanged == 1)
        let movedInSecondBlock = (32 ..< 64).filter { after.code(row: 1, column: $0 - 32) != before.code(row: 1, column: $0 - 32) }
        #expect(difference.codesMoved == 1 + movedInSecondBlock.count)

        let rowsBefore = try quantize([1, 2, 3, 127, 1, 2, 3, 127], rows: 2, columns: 4, .int8Row)
        let rowsAfter = try quantize([1, 2, 4, 127, 1, 2, 3, 254], rows: 2, columns: 4, .int8Row)
        #expect(try rowsAfter.codeDifference(from: rowsBefore) == .init(codesMoved: 4, codeCount: 8, scalesChanged: 1, scaleCount: 2))

        #expect(throws: QuantizationError.self) { try rowsAfter.codeDifference(from: before) }
    }

    // MARK: Helpers

    /// A q4_0 block with ±8 at columns 1 and 2 (`firstMax` first) and values probing truncation.
    private func q4Block(firstMax: Float) -> [Float] {
        var values: [Float] = [0.6, firstMax, -firstMax, 0, -0.6, 0.5, -0.5, 3.49, -3.5, -3.51, 7.4, 7.5, 1, 2, 3, 4]
        values += (16 ..< 32).map { Float($0 - 23) }
        return values
    }

    private func quantize(
        _ values: [Float], rows: Int, columns: Int, _ scheme: QuantizationScheme
    ) throws -> QuantizedTensor {
        try values.withUnsafeBufferPointer { try Quantizer.quantize($0, rows: rows, columns: columns, scheme: scheme) }
    }
}

/// Uniform values in [−1, 1) from a SplitMix64 stream.
private struct UniformSource {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) * 0x1p-23 - 1
    }
}
