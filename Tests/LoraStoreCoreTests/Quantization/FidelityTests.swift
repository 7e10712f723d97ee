import Foundation
import Testing
@testable import LoraStoreCore

/// The loss of small adapters on re-quantization and narrow outputs, and the arithmetic of the report.
@Suite struct FidelityTests {
    static let rows = 64
    static let columns = 256

    /// A base weight drawn from N(0, 0.02), as in a trained projection.
    static let baseWeight: [Float] = {
        var random = GaussianSource(seed: 1)
        return (0 ..< rows * columns).map { _ in 0.02 * random.next() }
    }()

    /// A rank-8 update `B·A`, normalised so its largest magnitude is 1.
    static let unitDelta: [Float] = {
        var random = GaussianSource(seed: 2)
        let rank = 8
        let b = (0 ..< rows * rank).map { _ in random.next() }
        let a = (0 ..< rank * columns).map { _ in random.next() }
        var delta = [Float](repeating: 0, count: rows * columns)
        for row in 0 ..< rows {
            for column in 0 ..< columns {
                var sum: Float = 0
                for k in 0 ..< rank { sum += b[row * rank + k] * a[k * columns + column] }
                delta[row * columns + column] = sum
            }
        }
        let peak = delta.map(abs).max() ?? 1
        return delta.map { $0 / peak }
    }()

    // MARK: The phenomenon

    /// A delta whose largest value is 0.1 of the smallest quantization step moves no code: re-quantizing
    /// the merged weight gives back (almost) the base, so under 0.1 of the adapter survives, while on the
    /// fly keeps all of it. At 10 steps nearly all of it survives.
    @Test(arguments: QuantizationScheme.allCases)
    func requantizingLosesAnAdapterBelowTheStep(scheme: QuantizationScheme) throws {
        let quantizedBase = try Self.baseWeight.withUnsafeBufferPointer {
            try Quantizer.quantize($0, rows: Self.rows, columns: Self.columns, scheme: scheme)
        }
        let step = smallestStep(quantizedBase)

        let small = try requantizedFidelity(quantizedBase, deltaPeak: 0.1 * step)
        #expect(try #require(small.merged.survivedShare) < 0.1)
        #expect(try #require(small.merged.relativeError) > 0.9)
        #expect(try #require(small.merged.probeRelativeError) > 0.9)
        #expect(try #require(small.merged.codesMovedShare) < 0.01)
        #expect(abs(try #require(small.onTheFly.survivedShare) - 1) < 1e-12)
        #expect(try #require(small.onTheFly.relativeError) < 1e-3)
        #expect(try #require(small.onTheFly.probeRelativeError) < 1e-2)
        #expect(small.onTheFly.codesMovedShare == nil)

        let large = try requantizedFidelity(quantizedBase, deltaPeak: 10 * step)
        #expect(try #require(large.merged.survivedShare) > 0.9)
        #expect(try #require(large.merged.probeRelativeError) < 0.5)
        #expect(try #require(large.merged.codesMovedShare) > 0.3)
        #expect(abs(try #require(large.onTheFly.survivedShare) - 1) < 1e-12)
    }

    /// A BF16 output rounds a delta far below the BF16 spacing of the base away; the same merge kept in
    /// F32 keeps it.
    @Test func bf16OutputsRoundSmallDeltasAway() throws {
        let base = Self.baseWeight.map { FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0)) }
        let delta = Self.unitDelta.map { $0 * 1e-5 }  // BF16 spacing near 0.02 is about 1.2e-4
        let exact = zip(base, delta).map { $0 + $1 }
        let bf16 = exact.map { FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0)) }

        let narrow = try measure(base: base, delta: delta, output: bf16)
        #expect(try #require(narrow.merged.survivedShare) < 0.2)
        #expect(narrow.merged.codesMovedShare == nil)
        let wide = try measure(base: base, delta: delta, output: exact)
        #expect(wide.merged.relativeError == 0)
        #expect(wide.merged.probeRelativeError == 0)
        #expect(abs(try #require(wide.merged.survivedShare) - 1) < 1e-3)
    }

    // MARK: Definitions

    @Test func anOutputEqualToTheBaseLosesTheWholeAdapter() throws {
        let delta = Self.unitDelta.map { $0 * 0.01 }
        let result = try measure(base: Self.baseWeight, delta: delta, output: Self.baseWeight)
        #expect(try #require(result.merged.survivedShare) == 0)
        #expect(abs(try #require(result.merged.relativeError) - 1) < 1e-4)
        #expect(abs(try #require(result.merged.probeRelativeError) - 1) < 1e-4)
    }

    @Test func aZeroDeltaLeavesRatiosUndefined() throws {
        let zeros = [Float](repeating: 0, count: Self.rows * Self.columns)
        let result = try measure(base: Self.baseWeight, delta: zeros, output: Self.baseWeight)
        #expect(result.merged.relativeError == nil)
        #expect(result.merged.survivedShare == nil)
        #expect(result.merged.probeRelativeError == nil)
        #expect(result.merged.sums.errorSquared == 0)
    }

    /// Totals add the sums: a tensor that kept a large adapter and one that lost a small one give the
    /// share weighted by ‖Δ‖², not the mean of 1 and 0.
    @Test func totalsAddSumsRatherThanAveragingRatios() throws {
        let kept = FidelityMetrics(sums: .init(
            errorSquared: 0, deltaSquared: 9, survivedDot: 9,
            codes: .init(codesMoved: 30, codeCount: 100, scalesChanged: 1, scaleCount: 4),
            probeErrorSquared: 0, probeEffectSquared: 16))
        let lost = FidelityMetrics(sums: .init(
            errorSquared: 1, deltaSquared: 1, survivedDot: 0,
            codes: .init(codesMoved: 0, codeCount: 300, scalesChanged: 0, scaleCount: 12),
            probeErrorSquared: 9, probeEffectSquared: 9))
        let total = FidelityMetrics.total([kept, lost])
        #expect(total.survivedShare == 0.9)
        #expect(total.relativeError == (1.0 / 10).squareRoot())
        #expect(total.codesMovedShare == 30.0 / 400)
        #expect(total.scalesChangedShare == 1.0 / 16)
        #expect(total.probeRelativeError == 9.0.squareRoot() / 25.0.squareRoot())
        #expect(FidelityMetrics.total([FidelityMetrics]()).survivedShare == nil)
    }

    @Test func measurementsAreDeterministicAndEncodable() throws {
        let quantizedBase = try Self.baseWeight.withUnsafeBufferPointer {
            try Quantizer.quantize($0, rows: Self.rows, columns: Self.columns, scheme: .q8_0)
        }
        let first = try requantizedFidelity(quantizedBase, deltaPeak: 1e-3)
        let second = try requantizedFidelity(quantizedBase, deltaPeak: 1e-3)
        // Rows are measured in parallel: two runs agree only if the sums do not depend on scheduling.
        #expect(first == second)
        let otherPeak = try requantizedFidelity(quantizedBase, deltaPeak: 2e-3)
        #expect(first != otherPeak, "the figures depend on the delta")
        let delta = Self.unitDelta.map { Double($0 * Float(1e-3)) }
        let deltaSquared = delta.reduce(0) { $0 + $1 * $1 }
        #expect(abs(first.merged.sums.deltaSquared - deltaSquared) <= deltaSquared * 1e-10)
        let total = FidelityMeasure.Comparison.total([first, second])
        #expect(total.merged.survivedShare == first.merged.survivedShare)
        let encoded = try JSONEncoder().encode(total)
        #expect(try JSONDecoder().decode(FidelityMeasure.Comparison.self, from: encoded) == total)
    }

    @Test func probeInputsAreFixedBySeed() {
        let probe = FidelityMeasure.Probe.standard
        #expect(probe.rows == 8)
        let inputs = probe.inputs(columns: 16)
        #expect(inputs.count == 128)
        var stream = SplitMix64(state: probe.seed)
        let expected = (0 ..< 128).map { _ in Float(stream.next() >> 40) * 0x1p-23 - 1 }
        #expect(inputs == expected, "a SplitMix64 stream from the seed, on a grid of 2⁻²³ in [-1, 1)")
        #expect(inputs.allSatisfy { $0 >= -1 && $0 < 1 })
        #expect(inputs != FidelityMeasure.Probe(rows: 8, seed: 1).inputs(columns: 16))
    }

    /// The sums against their definitions, computed one value at a time in Double, on a width that is not
    /// a whole number of the measurement's eight-column groups.
    @Test func sumsMatchTheirDefinitions() throws {
        let (rows, columns) = (5, 37)
        var random = GaussianSource(seed: 3)
        let base = (0 ..< rows * columns).map { _ in 0.02 * random.next() }
        let delta = (0 ..< rows * columns).map { _ in 1e-3 * random.next() }
        let output = zip(base, delta).map { FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0 + $1)) }
        let probe = FidelityMeasure.Probe.standard
        let inputs = probe.inputs(columns: columns)
        var expected = (error: 0.0, delta: 0.0, survived: 0.0, held: 0.0, probeError: 0.0, probeEffect: 0.0)
        for row in 0 ..< rows {
            let range = row * columns ..< (row + 1) * columns
            for index in range {
                let exact = Double(base[index] + delta[index])
                expected.error += (Double(output[index]) - exact) * (Double(output[index]) - exact)
                expected.delta += Double(delta[index]) * Double(delta[index])
                expected.survived += (Double(output[index]) - Double(base[index])) * Double(delta[index])
                // On the fly, the weight is base + Δ held exactly; its only error is W_exact's F32 rounding.
                let held = Double(base[index]) + Double(delta[index]) - exact
                expected.held += held * held
            }
            for input in 0 ..< probe.rows {
                var (error, effect) = (0.0, 0.0)
                for (column, index) in range.enumerated() {
                    let x = Double(inputs[input * columns + column])
                    error += x * (Double(output[index]) - Double(base[index] + delta[index]))
                    effect += x * Double(delta[index])
                }
                expected.probeError += error * error
                expected.probeEffect += effect * effect
            }
        }
        let comparison = try base.withUnsafeBufferPointer { base in
            try delta.withUnsafeBufferPointer { delta in
                try output.withUnsafeBufferPointer { output in
                    try FidelityMeasure.measure(base: base, delta: delta, output: output, rows: rows, columns: columns)
                }
            }
        }
        let (sums, onTheFly) = (comparison.merged.sums, comparison.onTheFly.sums)
        let pairs = [
            (sums.errorSquared, expected.error), (sums.deltaSquared, expected.delta),
            (sums.survivedDot, expected.survived), (sums.probeErrorSquared, expected.probeError),
            (sums.probeEffectSquared, expected.probeEffect), (onTheFly.errorSquared, expected.held),
        ]
        for (measured, definition) in pairs {
            #expect(definition > 0)
            #expect(abs(measured - definition) <= 1e-9 * definition, "\(measured) vs \(definition)")
        }
        // On the fly the probe's products are accumulated in F32, as a runtime does: its error is F32
        // rounding, far below the adapter's effect, which the BF16 output's error is not.
        #expect(onTheFly.probeErrorSquared <= 1e-6 * expected.probeEffect)
        #expect(sums.probeErrorSquared > 1e-5 * expected.probeEffect)
    }

    /// The AVX-512 row sums give the same bits as the portable ones: the figures a build records do not
    /// depend on the CPU that measured it. Five probe rows leave one probe outside the C code's blocks of four.
    @Test(
        .enabled(if: LowRankKernel.Implementation.avx512.isAvailable, "this CPU has no AVX-512"),
        arguments: [(1, 8), (37, 8), (64, 5), (203, 8)])
    func avx512RowSumsEqualThePortableOnes(columns: Int, probeRows: Int) throws {
        let rows = 7
        var random = GaussianSource(seed: UInt64(10 + columns))
        let base = (0 ..< rows * columns).map { _ in 0.02 * random.next() }
        let delta = (0 ..< rows * columns).map { _ in 1e-3 * random.next() }
        let output = zip(base, delta).map { FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0 + $1)) }
        let results = try [LowRankKernel.Implementation.portable, .avx512].map { implementation in
            try base.withUnsafeBytes { base in
                try delta.withUnsafeBufferPointer { delta in
                    try output.withUnsafeBytes { output in
                        try FidelityMeasure.measure(
                            base: base, baseType: .f32, delta: delta, output: output, outputType: .f32, rows: rows,
                            columns: columns, codes: nil, probe: FidelityMeasure.Probe(rows: probeRows, seed: 9),
                            implementation: implementation)
                    }
                }
            }
        }
        #expect(results[0] == results[1])
        #expect(results[0].merged.sums.errorSquared > 0)
    }

    /// BF16 and F16 bytes as stored measure exactly as their F32 values do: a merge measures its output
    /// without widening whole tensors first.
    @Test(arguments: [DType.bf16, .f16])
    func storedBytesMeasureAsTheirWidenedValues(dtype: DType) throws {
        let (rows, columns) = (6, 45)
        var random = GaussianSource(seed: 4)
        let values = (0 ..< 2 * rows * columns).map { _ in 0.02 * random.next() }
        var stored = [UInt8](repeating: 0, count: 2 * values.count)
        try values.withUnsafeBytes { source in
            try stored.withUnsafeMutableBytes { destination in
                try FloatConversion.convert(
                    source.baseAddress!, from: .f32, to: destination.baseAddress!, as: dtype, count: values.count)
            }
        }
        let widened = try stored.withUnsafeBytes { try FloatConversion.floats($0, dtype: dtype) }
        let count = rows * columns
        let delta = (0 ..< count).map { _ in 1e-3 * random.next() }
        let fromValues = try measure(
            base: Array(widened[..<count]), delta: delta, output: Array(widened[count...]), rows: rows, columns: columns)
        let fromBytes = try stored.withUnsafeBytes { bytes in
            try delta.withUnsafeBufferPointer { delta in
                try FidelityMeasure.measure(
                    base: UnsafeRawBufferPointer(rebasing: bytes[..<(2 * count)]), baseType: dtype, delta: delta,
                    output: UnsafeRawBufferPointer(rebasing: bytes[(2 * count)...]), outputType: dtype,
                    rows: rows, columns: columns)
            }
        }
        #expect(fromBytes == fromValues)
        #expect(throws: QuantizationError.self) {
            try stored.withUnsafeBytes { bytes in
                try delta.withUnsafeBufferPointer { delta in
                    try FidelityMeasure.measure(
                        base: bytes, baseType: .i8, delta: delta, output: bytes, outputType: dtype, rows: rows,
                        columns: columns)
                }
            }
        }
    }

    /// A delta given a block of rows at a time (as a merge computes it, to need no F32 copy of a large
    /// tensor) gives the same figures, to the bit, as the whole delta at once, whatever the block size.
    @Test(arguments: [1, 7, 40, 1000])
    func aDeltaInBlocksMeasuresAsTheWholeDelta(blockRows: Int) throws {
        let (rows, columns) = (37, 29)
        var random = GaussianSource(seed: 5)
        let base = (0 ..< rows * columns).map { _ in 0.02 * random.next() }
        let delta = (0 ..< rows * columns).map { _ in 1e-3 * random.next() }
        let output = zip(base, delta).map { FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: $0 + $1)) }
        let whole = try measure(base: base, delta: delta, output: output, rows: rows, columns: columns)
        var asked: [Range<Int>] = []
        let blocks = try base.withUnsafeBytes { base in
            try output.withUnsafeBytes { output in
                try FidelityMeasure.measure(
                    base: base, baseType: .f32, output: output, outputType: .f32, rows: rows, columns: columns,
                    blockRows: blockRows
                ) { range, values in
                    asked.append(range)
                    _ = values.initialize(from: delta[(range.lowerBound * columns) ..< (range.upperBound * columns)])
                }
            }
        }
        #expect(blocks == whole)
        #expect(asked.first?.lowerBound == 0 && asked.last?.upperBound == rows)
        #expect(asked.allSatisfy { $0.count <= blockRows } && asked.count == (rows + blockRows - 1) / blockRows)
    }

    @Test func mismatchedBuffersAreRefused() throws {
        let short = [Float](repeating: 0, count: 10)
        #expect(throws: QuantizationError.sizeMismatch(what: "output", expected: Self.rows * Self.columns, actual: 10)) {
            try measure(base: Self.baseWeight, delta: Self.baseWeight, output: short)
        }
    }

    // MARK: Helpers

    /// The smallest scale magnitude of a quantized weight: the finest step a value can move by.
    private func smallestStep(_ tensor: QuantizedTensor) -> Float {
        let stride = tensor.scheme.blockSize ?? tensor.columns
        var step = Float.infinity
        for row in 0 ..< tensor.rows {
            for column in Swift.stride(from: 0, to: tensor.columns, by: stride) {
                step = min(step, abs(tensor.scale(row: row, column: column)))
            }
        }
        return step
    }

    /// Merges the unit delta scaled to `deltaPeak` with `requantize` and measures the result against the
    /// base as stored.
    private func requantizedFidelity(_ base: QuantizedTensor, deltaPeak: Float) throws -> FidelityMeasure.Comparison {
        let delta = Self.unitDelta.map { $0 * deltaPeak }
        let merged = try delta.withUnsafeBufferPointer { try Quantizer.requantize(base, adding: $0) }
        return try measure(
            base: Quantizer.dequantize(base), delta: delta, output: Quantizer.dequantize(merged),
            codes: merged.codeDifference(from: base))
    }

    private func measure(
        base: [Float], delta: [Float], output: [Float], codes: QuantizedTensor.CodeDifference? = nil,
        rows: Int = FidelityTests.rows, columns: Int = FidelityTests.columns
    ) throws -> FidelityMeasure.Comparison {
        try base.withUnsafeBufferPointer { base in
            try delta.withUnsafeBufferPointer { delta in
                try output.withUnsafeBufferPointer { output in
                    try FidelityMeasure.measure(
                        base: base, delta: delta, output: output, rows: rows, columns: columns, codes: codes)
                }
            }
        }
    }
}

/// Standard normal values (Box–Muller on a SplitMix64 stream).
private struct GaussianSource {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    private mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 0.5) * 0x1p-53
    }

    mutating func next() -> Float {
        Float((-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * Double.pi * uniform()))
    }
}
