/// Measures how much of an adapter a materialized weight kept, next to applying the adapter on the fly.
///
/// Inputs are F32 buffers, row-major `[rows, columns]`: the base as stored (dequantized, or widened from
/// BF16/F16), the adapter delta `Δ`, and the output as it will be read back (dequantized or widened). The
/// reference is `W_exact = base + Δ` rounded once to F32. Sums are accumulated in Double per row and added
/// in row order, so the figures do not depend on the number of cores.
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
        guard rows >= 0, columns >= 0, !rows.multipliedReportingOverflow(by: columns).overflow, probe.rows >= 0 else {
            throw .invalidShape(rows: rows, columns: columns)
        }
        let count = rows * columns
        for (name, buffer) in [("base", base), ("delta", delta), ("output", output)] where buffer.count != count {
            throw .sizeMismatch(what: name, expected: count, actual: buffer.count)
        }
        let inputs = probe.inputs(columns: columns)
        var perRow = [RowSums](repeating: RowSums(), count: rows)
        perRow.withUnsafeMutableBufferPointer { perRow in
            nonisolated(unsafe) let perRow = perRow
            inputs.withUnsafeBufferPointer { inputs in
                ParallelRows.run(ParallelRows.ranges(rows: rows, valuesPerRow: columns * (1 + probe.rows))) { _, range in
                    // Per row, three widened values for each group of four columns (see `measureRow`).
                    let widened = UnsafeMutableBufferPointer<SIMD4<Double>>.allocate(capacity: 3 * ((columns + 3) / 4))
                    defer { widened.deallocate() }
                    for row in range {
                        let slice = row * columns ..< (row + 1) * columns
                        perRow[row] = measureRow(
                            base: UnsafeBufferPointer(rebasing: base[slice]),
                            delta: UnsafeBufferPointer(rebasing: delta[slice]),
                            output: UnsafeBufferPointer(rebasing: output[slice]),
                            inputs: inputs, probeRows: probe.rows, widened: widened)
                    }
                }
            }
        }
        let total = perRow.reduce(RowSums(), +)
        let merged = FidelityMetrics.Sums(
            errorSquared: total.errorSquared, deltaSquared: total.deltaSquared, survivedDot: total.survivedDot,
            codes: codes, probeErrorSquared: total.probeErrorSquared, probeEffectSquared: total.probeEffectSquared)
        let onTheFly = FidelityMetrics.Sums(
            errorSquared: total.onTheFlyErrorSquared, deltaSquared: total.deltaSquared,
            survivedDot: total.deltaSquared, probeErrorSquared: total.onTheFlyProbeErrorSquared,
            probeEffectSquared: total.probeEffectSquared)
        return Comparison(merged: FidelityMetrics(sums: merged), onTheFly: FidelityMetrics(sums: onTheFly))
    }

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

    private static func measureRow(
        base: UnsafeBufferPointer<Float>, delta: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>,
        inputs: UnsafeBufferPointer<Float>, probeRows: Int, widened: UnsafeMutableBufferPointer<SIMD4<Double>>
    ) -> RowSums {
        var sums = RowSums()
        let columns = base.count
        for column in 0..<columns {
            let b = base[column]
            let d = delta[column]
            let exact = Double(b + d)
            let out = Double(output[column])
            sums.errorSquared += (out - exact) * (out - exact)
            sums.deltaSquared += Double(d) * Double(d)
            sums.survivedDot += (out - Double(b)) * Double(d)
            let held = Double(b) + Double(d) - exact
            sums.onTheFlyErrorSquared += held * held
        }
        // The values every probe reads, widened to Double once per row instead of once per probe: for each
        // group of four columns, `W_exact`, the output's difference from it, and `Δ`, side by side.
        let groups = probeRows > 0 ? (columns + 3) / 4 : 0
        for group in 0..<groups {
            let d = lanes(delta, group * 4)
            let exact = wide(lanes(base, group * 4) + d)
            widened[3 * group] = exact
            widened[3 * group + 1] = wide(lanes(output, group * 4)) - exact
            widened[3 * group + 2] = wide(d)
        }
        // Four interleaved partial sums per quantity (lane = column mod 4, then added in lane order) keep
        // the loop from waiting on one long dependency chain; the order is fixed, so results are too.
        for probe in 0..<probeRows {
            let x = UnsafeBufferPointer(rebasing: inputs[probe * columns ..< (probe + 1) * columns])
            var error = SIMD4<Double>()
            var effect = SIMD4<Double>()
            var exact = SIMD4<Double>()
            var baseProduct = SIMD4<Float>()
            var deltaProduct = SIMD4<Float>()
            for group in 0..<groups {
                let column = group * 4
                let xc = lanes(x, column)
                let xd = wide(xc)
                error += xd * widened[3 * group + 1]
                effect += xd * widened[3 * group + 2]
                exact += xd * widened[3 * group]
                baseProduct += xc * lanes(base, column)
                deltaProduct += xc * lanes(delta, column)
            }
            let errorSum = error[0] + error[1] + error[2] + error[3]
            let effectSum = effect[0] + effect[1] + effect[2] + effect[3]
            let exactSum = exact[0] + exact[1] + exact[2] + exact[3]
            let onTheFlySum = (baseProduct[0] + baseProduct[1] + baseProduct[2] + baseProduct[3])
                + (deltaProduct[0] + deltaProduct[1] + deltaProduct[2] + deltaProduct[3])
            let onTheFly = Double(onTheFlySum) - exactSum
            sums.probeErrorSquared += errorSum * errorSum
            sums.probeEffectSquared += effectSum * effectSum
            sums.onTheFlyProbeErrorSquared += onTheFly * onTheFly
        }
        return sums
    }

    /// Four values from `column` on; lanes past the end are zero and add nothing.
    @inline(__always)
    private static func lanes(_ buffer: UnsafeBufferPointer<Float>, _ column: Int) -> SIMD4<Float> {
        guard column + 4 <= buffer.count, let start = buffer.baseAddress else {
            var partial = SIMD4<Float>()
            for lane in 0 ..< buffer.count - column { partial[lane] = buffer[column + lane] }
            return partial
        }
        return UnsafeRawPointer(start + column).loadUnaligned(as: SIMD4<Float>.self)
    }

    /// Widens four F32 lanes to Double, lane by lane (compiles to one `vcvtps2pd`).
    @inline(__always)
    private static func wide(_ value: SIMD4<Float>) -> SIMD4<Double> {
        SIMD4<Double>(Double(value[0]), Double(value[1]), Double(value[2]), Double(value[3]))
    }
}
