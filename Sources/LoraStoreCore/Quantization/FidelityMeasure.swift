import CSIMDKernels
import Foundation

/// Measures how much of an adapter a materialized weight kept, next to applying the adapter on the fly.
///
/// Inputs are row-major `[rows, columns]`: the base as stored (dequantized to F32, or F32, F16 or BF16
/// values widened row by row), the adapter delta `Δ` in F32, and the output as it will be read back
/// (likewise). The reference is `W_exact = base + Δ` rounded once to F32. Sums are accumulated in Double per
/// row and added in row order, so the figures do not depend on the number of cores.
///
/// Two applications are measured side by side (``Comparison``):
/// - **merged**: the output weight as given.
/// - **on the fly**: base as stored plus `Δ` applied separately. Its weight is `base + Δ` held exactly,
///   so ``FidelityMetrics/survivedShare`` is 1 and ``FidelityMetrics/relativeError`` is only the F32
///   rounding of `W_exact`; its probe outputs are computed as a runtime would, `x·baseᵀ + x·Δᵀ`, each
///   product accumulated in F32.
///
/// The probe feeds ``Probe/rows`` fixed random input rows `x` (uniform in [−1, 1), from ``Probe/seed``)
/// through `y = x·Wᵀ` and reports `‖y − y_exact‖ / ‖x·Δᵀ‖` (see ``FidelityMetrics``).
public enum FidelityMeasure {
    /// The fixed random inputs of the output probe.
    public struct Probe: Sendable, Codable, Hashable {
        /// Input rows (batch size) of the probe.
        public var rows: Int
        /// Seed of the input values; the same seed gives the same inputs for every tensor of a width.
        public var seed: UInt64

        /// Creates a probe of `rows` inputs drawn from `seed`.
        public init(rows: Int, seed: UInt64) {
            self.rows = rows
            self.seed = seed
        }

        /// Eight inputs from a fixed seed.
        public static let standard = Probe(rows: 8, seed: 0x6C6F_7261_7374_6F72)

        /// The probe inputs for a weight of `columns` columns, row-major `[rows, columns]`, each uniform in
        /// [−1, 1) on a grid of 2⁻²³ (SplitMix64 stream from ``seed``).
        public func inputs(columns: Int) -> [Float] {
            var state = seed
            return (0 ..< max(0, rows) * max(0, columns)).map { _ in
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                return Float(z >> 40) * 0x1p-23 - 1
            }
        }
    }

    /// The figures for the merged output and for on-the-fly application of the same adapter.
    public struct Comparison: Sendable, Codable, Hashable {
        /// The materialized output.
        public let merged: FidelityMetrics
        /// The base as stored with the delta applied at inference time.
        public let onTheFly: FidelityMetrics

        /// Pairs two sets of figures.
        public init(merged: FidelityMetrics, onTheFly: FidelityMetrics) {
            self.merged = merged
            self.onTheFly = onTheFly
        }

        /// Both applications totalled over several tensors (see ``FidelityMetrics/total(_:)``).
        public static func total<Parts: Sequence>(_ parts: Parts) -> Comparison where Parts.Element == Comparison {
            let parts = Array(parts)
            return Comparison(
                merged: FidelityMetrics.total(parts.map(\.merged)),
                onTheFly: FidelityMetrics.total(parts.map(\.onTheFly)))
        }
    }

    /// Measures one tensor.
    /// - Parameters:
    ///   - base: The base weight as stored, in F32.
    ///   - delta: The adapter delta `Δ` in F32.
    ///   - output: The materialized weight as it will be read back, in F32.
    ///   - codes: For a quantized output, how its codes differ from the quantized base's
    ///     (``QuantizedTensor/codeDifference(from:)``); `nil` otherwise.
    ///   - probe: The probe inputs.
    /// - Throws: ``QuantizationError/sizeMismatch(what:expected:actual:)`` when a buffer does not hold
    ///   `rows × columns` values, ``QuantizationError/invalidShape(rows:columns:)`` for a bad shape.
    public static func measure(
        base: UnsafeBufferPointer<Float>, delta: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>,
        rows: Int, columns: Int, codes: QuantizedTensor.CodeDifference? = nil, probe: Probe = .standard
    ) throws(QuantizationError) -> Comparison {
        try measure(
            base: UnsafeRawBufferPointer(base), baseType: .f32, delta: delta, output: UnsafeRawBufferPointer(output),
            outputType: .f32, rows: rows, columns: columns, codes: codes, probe: probe)
    }

    /// Measures one tensor whose base and output are given as stored: F32, F16 or BF16, widened to F32
    /// (exactly) a row at a time, so a merge measures its output without a model-sized F32 copy of either.
    /// - Throws: ``QuantizationError/sizeMismatch(what:expected:actual:)`` when a buffer does not hold
    ///   `rows × columns` values of its type, ``QuantizationError/invalidShape(rows:columns:)`` for a bad
    ///   shape, ``QuantizationError/incompatibleTensors(_:)`` for a type other than F32, F16 or BF16.
    public static func measure(
        base: UnsafeRawBufferPointer, baseType: DType, delta: UnsafeBufferPointer<Float>,
        output: UnsafeRawBufferPointer, outputType: DType,
        rows: Int, columns: Int, codes: QuantizedTensor.CodeDifference? = nil, probe: Probe = .standard
    ) throws(QuantizationError) -> Comparison {
        try measure(
            base: base, baseType: baseType, delta: delta, output: output, outputType: outputType, rows: rows,
            columns: columns, codes: codes, probe: probe, implementation: .preferred)
    }

    /// ``measure(base:baseType:delta:output:outputType:rows:columns:codes:probe:)`` with the row sums of
    /// `implementation`: AVX-512 (one ZMM register where the portable code uses two YMM registers) or
    /// portable Swift, which give the same bits.
    static func measure(
        base: UnsafeRawBufferPointer, baseType: DType, delta: UnsafeBufferPointer<Float>,
        output: UnsafeRawBufferPointer, outputType: DType, rows: Int, columns: Int,
        codes: QuantizedTensor.CodeDifference?, probe: Probe, implementation: LowRankKernel.Implementation
    ) throws(QuantizationError) -> Comparison {
        var measurement = try Measurement(
            base: base, baseType: baseType, output: output, outputType: outputType, rows: rows, columns: columns,
            probe: probe, implementation: implementation)
        let (expected, overflow) = rows.multipliedReportingOverflow(by: columns)
        if overflow || delta.count != expected { throw .sizeMismatch(what: "delta", expected: expected, actual: delta.count) }
        measurement.add(rows: 0 ..< rows, delta: delta)
        return measurement.comparison(codes: codes)
    }

    /// Measures one tensor whose delta `delta(rows, into)` computes a block of at most `blockRows` rows at a
    /// time (row-major into the buffer it is given), so that a merge measures a large tensor with memory
    /// for a block of its delta, not all of it. The figures are those of
    /// ``measure(base:baseType:delta:output:outputType:rows:columns:codes:probe:)`` on the whole delta: rows
    /// are summed in the same order.
    static func measure(
        base: UnsafeRawBufferPointer, baseType: DType, output: UnsafeRawBufferPointer, outputType: DType,
        rows: Int, columns: Int, probe: Probe = .standard, blockRows: Int,
        delta: (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> Void
    ) throws -> Comparison {
        var measurement = try Measurement(
            base: base, baseType: baseType, output: output, outputType: outputType, rows: rows, columns: columns,
            probe: probe, implementation: .preferred)
        let step = max(1, blockRows)
        let block = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, min(step, rows) * columns))
        defer { block.deallocate() }
        for first in stride(from: 0, to: rows, by: step) {
            let range = first ..< min(first + step, rows)
            let values = UnsafeMutableBufferPointer(rebasing: block[0 ..< range.count * columns])
            try delta(range, values)
            measurement.add(rows: range, delta: UnsafeBufferPointer(values))
        }
        return measurement.comparison(codes: nil)
    }

    /// One tensor's measurement in progress: its inputs checked, the probe's inputs made, and the sums of the
    /// rows measured so far, added in row order.
    private struct Measurement {
        let base: UnsafeRawBufferPointer
        let baseType: DType
        let output: UnsafeRawBufferPointer
        let outputType: DType
        let columns: Int
        let implementation: LowRankKernel.Implementation
        /// Columns per row rounded up to whole groups of ``lanes``.
        let groups: Int
        let probeRows: Int
        /// The probe inputs, each row zero-padded to whole groups, in F32 and widened to Double.
        let inputs: [Float]
        let wideInputs: [Double]
        /// The sums of the rows measured so far, in row order from the first.
        private(set) var total = RowSums()

        init(
            base: UnsafeRawBufferPointer, baseType: DType, output: UnsafeRawBufferPointer, outputType: DType,
            rows: Int, columns: Int, probe: Probe, implementation: LowRankKernel.Implementation
        ) throws(QuantizationError) {
            guard implementation.isAvailable else {
                throw .incompatibleTensors("the \(implementation) row sums do not run on this CPU")
            }
            guard rows >= 0, columns >= 0, !rows.multipliedReportingOverflow(by: columns).overflow, probe.rows >= 0 else {
                throw .invalidShape(rows: rows, columns: columns)
            }
            let count = rows * columns
            for (name, type) in [("base", baseType), ("output", outputType)] where !type.isMergeable {
                throw .incompatibleTensors("the \(name) is \(type.rawValue); fidelity is measured on F32, F16 or BF16")
            }
            for (name, bytes, width) in [("base", base.count, baseType.byteWidth ?? 1), ("output", output.count, outputType.byteWidth ?? 1)] {
                let (expected, overflow) = count.multipliedReportingOverflow(by: width)
                if overflow || bytes != expected { throw .sizeMismatch(what: name, expected: count, actual: bytes / width) }
            }
            // Rows are measured in groups of eight columns; the probe inputs are padded with zeros to whole
            // groups, and so is each row's copy, so the lanes past the end add nothing.
            groups = (columns + FidelityMeasure.lanes - 1) / FidelityMeasure.lanes
            let padded = groups * FidelityMeasure.lanes
            var inputs = [Float](repeating: 0, count: probe.rows * padded)
            var wideInputs = [Double](repeating: 0, count: probe.rows * padded)
            let generated = probe.inputs(columns: columns)
            for row in 0 ..< probe.rows {
                for column in 0 ..< columns {
                    inputs[row * padded + column] = generated[row * columns + column]
                    wideInputs[row * padded + column] = Double(generated[row * columns + column])
                }
            }
            (self.base, self.baseType, self.output, self.outputType) = (base, baseType, output, outputType)
            (self.columns, self.implementation, self.probeRows) = (columns, implementation, probe.rows)
            (self.inputs, self.wideInputs) = (inputs, wideInputs)
        }

        /// Measures rows `rows`, the next ones in order, whose delta is `delta` (those rows only), on all cores.
        mutating func add(rows: Range<Int>, delta: UnsafeBufferPointer<Float>) {
            let source = Source(
                base: base, baseType: baseType, delta: delta, firstDeltaRow: rows.lowerBound, output: output,
                outputType: outputType, columns: columns)
            let (groups, implementation) = (groups, implementation)
            var perRow = [RowSums](repeating: RowSums(), count: rows.count)
            perRow.withUnsafeMutableBufferPointer { perRow in
                nonisolated(unsafe) let perRow = perRow
                inputs.withUnsafeBufferPointer { inputs in
                    wideInputs.withUnsafeBufferPointer { wideInputs in
                        let probeInputs = ProbeInputs(
                            floats: inputs, doubles: wideInputs, rows: probeRows, padded: groups * FidelityMeasure.lanes)
                        let ranges = ParallelRows.ranges(rows: rows.count, valuesPerRow: columns * (1 + probeRows))
                        let workers = min(ranges.count, ProcessInfo.processInfo.activeProcessorCount)
                        WorkQueue.run(tasks: ranges.count, workers: workers) { _, next in
                            // One scratch per worker, however many ranges it takes.
                            let scratch = RowScratch(groups: groups)
                            defer { scratch.deallocate() }
                            while let index = next() {
                                for offset in ranges[index] {
                                    source.widen(row: rows.lowerBound + offset, into: scratch)
                                    perRow[offset] = implementation == .avx512
                                        ? measureRowAVX512(scratch, groups: groups, probe: probeInputs)
                                        : measureRow(scratch, groups: groups, probe: probeInputs)
                                }
                            }
                        }
                    }
                }
            }
            total = perRow.reduce(total, +)
        }

        /// The figures of the rows measured.
        func comparison(codes: QuantizedTensor.CodeDifference?) -> Comparison {
            let merged = FidelityMetrics.Sums(
                errorSquared: total.errorSquared, deltaSquared: total.deltaSquared, survivedDot: total.survivedDot,
                codes: codes, probeErrorSquared: total.probeErrorSquared, probeEffectSquared: total.probeEffectSquared)
            let onTheFly = FidelityMetrics.Sums(
                errorSquared: total.onTheFlyErrorSquared, deltaSquared: total.deltaSquared,
                survivedDot: total.deltaSquared, probeErrorSquared: total.onTheFlyProbeErrorSquared,
                probeEffectSquared: total.probeEffectSquared)
            return Comparison(merged: FidelityMetrics(sums: merged), onTheFly: FidelityMetrics(sums: onTheFly))
        }
    }

    /// Columns per group: one `SIMD8<Float>`, two `SIMD4<Double>`.
    private static let lanes = 8

    /// The per-row sums, added in row order at the end.
    private struct RowSums {
        var errorSquared = 0.0
        var deltaSquared = 0.0
        var survivedDot = 0.0
        var onTheFlyErrorSquared = 0.0
        var probeErrorSquared = 0.0
        var probeEffectSquared = 0.0
        var onTheFlyProbeErrorSquared = 0.0

        static func + (lhs: RowSums, rhs: RowSums) -> RowSums {
            RowSums(
                errorSquared: lhs.errorSquared + rhs.errorSquared,
                deltaSquared: lhs.deltaSquared + rhs.deltaSquared,
                survivedDot: lhs.survivedDot + rhs.survivedDot,
                onTheFlyErrorSquared: lhs.onTheFlyErrorSquared + rhs.onTheFlyErrorSquared,
                probeErrorSquared: lhs.probeErrorSquared + rhs.probeErrorSquared,
                probeEffectSquared: lhs.probeEffectSquared + rhs.probeEffectSquared,
                onTheFlyProbeErrorSquared: lhs.onTheFlyProbeErrorSquared + rhs.onTheFlyProbeErrorSquared)
        }
    }

    /// The tensor's three matrices as given; unchecked-sendable because it carries raw pointers, which the
    /// workers only read.
    private struct Source: @unchecked Sendable {
        let base: UnsafeRawBufferPointer
        let baseType: DType
        /// The delta's rows from `firstDeltaRow` on.
        let delta: UnsafeBufferPointer<Float>
        let firstDeltaRow: Int
        let output: UnsafeRawBufferPointer
        let outputType: DType
        let columns: Int

        /// Copies row `row` of each matrix into `scratch` as F32 (exact widening); the padding stays zero.
        func widen(row: Int, into scratch: RowScratch) {
            let start = row * columns
            Self.widen(base, baseType, from: start, count: columns, into: scratch.base)
            Self.widen(
                UnsafeRawBufferPointer(delta), .f32, from: (row - firstDeltaRow) * columns, count: columns, into: scratch.delta)
            Self.widen(output, outputType, from: start, count: columns, into: scratch.output)
        }

        private static func widen(
            _ bytes: UnsafeRawBufferPointer, _ type: DType, from start: Int, count: Int,
            into destination: UnsafeMutablePointer<Float>
        ) {
            guard let address = bytes.baseAddress, count > 0 else { return }
            switch type {
            case .bf16: FloatConversion.bfloat16ToFloat(address + 2 * start, destination, count: count)
            case .f16: FloatConversion.float16ToFloat(address + 2 * start, destination, count: count)
            default: UnsafeMutableRawPointer(destination).copyMemory(from: address + 4 * start, byteCount: 4 * count)
            }
        }
    }

    /// One worker's copies of a row (base, delta, output in F32, zero-padded to whole groups) and the
    /// values every probe reads, widened once per row: for each group, `W_exact`, the output's difference
    /// from it, and `Δ`, each as two `SIMD4<Double>`.
    private struct RowScratch {
        let base: UnsafeMutablePointer<Float>
        let delta: UnsafeMutablePointer<Float>
        let output: UnsafeMutablePointer<Float>
        let widened: UnsafeMutablePointer<SIMD4<Double>>

        init(groups: Int) {
            let padded = groups * FidelityMeasure.lanes
            base = .allocate(capacity: 3 * padded)
            base.initialize(repeating: 0, count: 3 * padded)
            delta = base + padded
            output = base + 2 * padded
            widened = .allocate(capacity: 6 * groups)
        }

        func deallocate() {
            base.deallocate()
            widened.deallocate()
        }
    }

    /// The probe inputs, zero-padded rows of ``lanes``-column groups, in F32 and widened to Double.
    private struct ProbeInputs: @unchecked Sendable {
        let floats: UnsafeBufferPointer<Float>
        let doubles: UnsafeBufferPointer<Double>
        let rows: Int
        let padded: Int
    }

    /// The sums of one row. Each quantity is accumulated with fused multiply-adds in eight lanes (column
    /// mod 8), which are added in lane order at the end: independent chains keep the loops from waiting
    /// on one another, and the order is fixed, so the results are too.
    private static func measureRow(_ row: RowScratch, groups: Int, probe: ProbeInputs) -> RowSums {
        var errorSquared = Lanes()
        var deltaSquared = Lanes()
        var survivedDot = Lanes()
        var heldSquared = Lanes()
        for group in 0 ..< groups {
            let b = load(row.base, group)
            let d = load(row.delta, group)
            let o = load(row.output, group)
            // `W_exact` rounded once to F32, then widened; the rest are exact in Double.
            let exact = Lanes(b + d)
            let (base, delta, out) = (Lanes(b), Lanes(d), Lanes(o))
            let error = out - exact
            errorSquared = errorSquared.adding(error, times: error)
            deltaSquared = deltaSquared.adding(delta, times: delta)
            survivedDot = survivedDot.adding(out - base, times: delta)
            let held = base + delta - exact
            heldSquared = heldSquared.adding(held, times: held)
            let widened = row.widened + 6 * group
            (widened[0], widened[1]) = (exact.low, exact.high)
            (widened[2], widened[3]) = (error.low, error.high)
            (widened[4], widened[5]) = (delta.low, delta.high)
        }
        var sums = RowSums(
            errorSquared: errorSquared.sum, deltaSquared: deltaSquared.sum, survivedDot: survivedDot.sum,
            onTheFlyErrorSquared: heldSquared.sum)
        guard let floats = probe.floats.baseAddress, let doubles = probe.doubles.baseAddress else { return sums }
        for input in 0 ..< probe.rows {
            let x = floats + input * probe.padded
            let wideX = doubles + input * probe.padded
            var error = Lanes()
            var effect = Lanes()
            var exact = Lanes()
            var baseProduct = SIMD8<Float>()
            var deltaProduct = SIMD8<Float>()
            for group in 0 ..< groups {
                let xd = Lanes(
                    low: UnsafeRawPointer(wideX + group * lanes).loadUnaligned(as: SIMD4<Double>.self),
                    high: UnsafeRawPointer(wideX + group * lanes + 4).loadUnaligned(as: SIMD4<Double>.self))
                let widened = row.widened + 6 * group
                exact = exact.adding(xd, times: Lanes(low: widened[0], high: widened[1]))
                error = error.adding(xd, times: Lanes(low: widened[2], high: widened[3]))
                effect = effect.adding(xd, times: Lanes(low: widened[4], high: widened[5]))
                let xc = load(x, group)
                baseProduct = baseProduct.addingProduct(xc, load(row.base, group))
                deltaProduct = deltaProduct.addingProduct(xc, load(row.delta, group))
            }
            // On the fly, as a runtime computes it: each product accumulated in F32, then added.
            let onTheFly = Double(laneSum(baseProduct) + laneSum(deltaProduct)) - exact.sum
            sums.probeErrorSquared += error.sum * error.sum
            sums.probeEffectSquared += effect.sum * effect.sum
            sums.onTheFlyProbeErrorSquared += onTheFly * onTheFly
        }
        return sums
    }

    /// ``measureRow(_:groups:probe:)`` in C with AVX-512 (`lorastore_measure_row_avx512`), the same bits.
    private static func measureRowAVX512(_ row: RowScratch, groups: Int, probe: ProbeInputs) -> RowSums {
        var sums = lorastore_row_sums()
        row.widened.withMemoryRebound(to: Double.self, capacity: 3 * lanes * groups) { widened in
            lorastore_measure_row_avx512(
                row.base, row.delta, row.output, groups, probe.floats.baseAddress, probe.doubles.baseAddress,
                probe.rows, probe.padded, widened, &sums)
        }
        return RowSums(
            errorSquared: sums.error_squared, deltaSquared: sums.delta_squared, survivedDot: sums.survived_dot,
            onTheFlyErrorSquared: sums.held_squared, probeErrorSquared: sums.probe_error_squared,
            probeEffectSquared: sums.probe_effect_squared,
            onTheFlyProbeErrorSquared: sums.on_the_fly_probe_error_squared)
    }

    /// Eight F32 lanes added from lane 0 up (the C path adds them the same way).
    @inline(__always)
    private static func laneSum(_ value: SIMD8<Float>) -> Float {
        value[0] + value[1] + value[2] + value[3] + value[4] + value[5] + value[6] + value[7]
    }

    /// Eight columns of a padded row.
    @inline(__always)
    private static func load(_ row: UnsafePointer<Float>, _ group: Int) -> SIMD8<Float> {
        UnsafeRawPointer(row + group * lanes).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Eight Double lanes as two `SIMD4<Double>` (a YMM register each on x86_64 with AVX2).
    private struct Lanes {
        var low = SIMD4<Double>()
        var high = SIMD4<Double>()

        init() {}

        init(low: SIMD4<Double>, high: SIMD4<Double>) {
            self.low = low
            self.high = high
        }

        /// Eight F32 values widened exactly, lane by lane (each half one `vcvtps2pd`).
        @inline(__always)
        init(_ values: SIMD8<Float>) {
            low = SIMD4<Double>(Double(values[0]), Double(values[1]), Double(values[2]), Double(values[3]))
            high = SIMD4<Double>(Double(values[4]), Double(values[5]), Double(values[6]), Double(values[7]))
        }

        @inline(__always)
        static func - (lhs: Lanes, rhs: Lanes) -> Lanes {
            Lanes(low: lhs.low - rhs.low, high: lhs.high - rhs.high)
        }

        @inline(__always)
        static func + (lhs: Lanes, rhs: Lanes) -> Lanes {
            Lanes(low: lhs.low + rhs.low, high: lhs.high + rhs.high)
        }

        /// `self + a·b` lane by lane, one rounding (fused multiply-add).
        @inline(__always)
        func adding(_ a: Lanes, times b: Lanes) -> Lanes {
            Lanes(low: low.addingProduct(a.low, b.low), high: high.addingProduct(a.high, b.high))
        }

        /// The lanes added in order.
        var sum: Double {
            low[0] + low[1] + low[2] + low[3] + high[0] + high[1] + high[2] + high[3]
        }
    }
}
