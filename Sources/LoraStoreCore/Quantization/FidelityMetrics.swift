/// How faithfully one way of applying an adapter reproduces the exact result, for one tensor or a whole
/// build.
///
/// The exact result is `W_exact = W_base + Δ` computed in F32 from the base as stored (dequantized or
/// widened to F32) and the adapter delta. Every figure is a ratio of sums kept in ``Sums``, so per-tensor
/// figures combine into a total by adding the sums (``total(_:)``), never by averaging ratios; a large
/// tensor weighs as much as its squared norms say.
///
/// - ``relativeError``: `‖W_out − W_exact‖ / ‖Δ‖`. 0 is perfect; 1 is what dropping the adapter costs.
/// - ``survivedShare``: the least-squares coefficient of `W_out − W_base` on `Δ`,
///   `⟨W_out − W_base, Δ⟩ / ‖Δ‖²`. 1 means all of the adapter is there, 0 means none of it.
/// - ``codesMovedShare`` and ``scalesChangedShare``: for quantized outputs, the share of codes and of
///   scales that differ from the base's (see ``QuantizedTensor/CodeDifference``).
/// - ``probeRelativeError``: on fixed random inputs `x`, `‖y_out − y_exact‖ / ‖x·Δᵀ‖` with `y = x·Wᵀ`, the
///   output error measured against the adapter's effect on the output: 0 is perfect, 1 means the effect is
///   lost (an output equal to the base gives exactly the adapter's effect as error).
///
/// A ratio is `nil` when its denominator is zero: a tensor whose delta is zero has no adapter to lose.
public struct FidelityMetrics: Sendable, Codable, Hashable {
    /// The sums every figure is derived from, accumulated in Double.
    public struct Sums: Sendable, Codable, Hashable {
        /// `Σ (W_out − W_exact)²`.
        public var errorSquared: Double
        /// `Σ Δ²`.
        public var deltaSquared: Double
        /// `Σ (W_out − W_base) · Δ`.
        public var survivedDot: Double
        /// Codes moved, codes compared, scales changed and scales compared; `nil` when the output is not
        /// quantized.
        public var codes: QuantizedTensor.CodeDifference?
        /// `Σ (y_out − y_exact)²` over the probe outputs.
        public var probeErrorSquared: Double
        /// `Σ (x·Δᵀ)²` over the probe outputs.
        public var probeEffectSquared: Double

        /// Creates sums from their parts.
        public init(
            errorSquared: Double, deltaSquared: Double, survivedDot: Double,
            codes: QuantizedTensor.CodeDifference? = nil,
            probeErrorSquared: Double, probeEffectSquared: Double
        ) {
            self.errorSquared = errorSquared
            self.deltaSquared = deltaSquared
            self.survivedDot = survivedDot
            self.codes = codes
            self.probeErrorSquared = probeErrorSquared
            self.probeEffectSquared = probeEffectSquared
        }

        /// The sums of nothing, the starting point of a total.
        public static let zero = Sums(
            errorSquared: 0, deltaSquared: 0, survivedDot: 0, probeErrorSquared: 0, probeEffectSquared: 0)

        /// Adds `other` part by part; code counts are added when either side has them.
        public static func + (lhs: Sums, rhs: Sums) -> Sums {
            var codes = lhs.codes
            if let right = rhs.codes {
                let left = codes ?? .init(codesMoved: 0, codeCount: 0, scalesChanged: 0, scaleCount: 0)
                codes = .init(
                    codesMoved: left.codesMoved + right.codesMoved, codeCount: left.codeCount + right.codeCount,
                    scalesChanged: left.scalesChanged + right.scalesChanged, scaleCount: left.scaleCount + right.scaleCount)
            }
            return Sums(
                errorSquared: lhs.errorSquared + rhs.errorSquared,
                deltaSquared: lhs.deltaSquared + rhs.deltaSquared,
                survivedDot: lhs.survivedDot + rhs.survivedDot,
                codes: codes,
                probeErrorSquared: lhs.probeErrorSquared + rhs.probeErrorSquared,
                probeEffectSquared: lhs.probeEffectSquared + rhs.probeEffectSquared)
        }
    }

    /// The sums the figures below are computed from.
    public let sums: Sums
    /// `‖W_out − W_exact‖ / ‖Δ‖`; `nil` when `Δ` is zero.
    public let relativeError: Double?
    /// `⟨W_out − W_base, Δ⟩ / ‖Δ‖²`: 1 = all of the adapter survived, 0 = none; `nil` when `Δ` is zero.
    public let survivedShare: Double?
    /// Share of codes that differ from the base's; `nil` for outputs that are not quantized.
    public let codesMovedShare: Double?
    /// Share of scales whose bits differ from the base's; `nil` for outputs that are not quantized.
    public let scalesChangedShare: Double?
    /// `‖y_out − y_exact‖ / ‖x·Δᵀ‖` on the probe inputs; `nil` when the adapter has no effect on them.
    public let probeRelativeError: Double?

    /// Derives the figures from `sums`.
    public init(sums: Sums) {
        self.sums = sums
        relativeError = Self.ratio(sums.errorSquared.squareRoot(), sums.deltaSquared.squareRoot())
        survivedShare = Self.ratio(sums.survivedDot, sums.deltaSquared)
        codesMovedShare = sums.codes.flatMap { Self.ratio(Double($0.codesMoved), Double($0.codeCount)) }
        scalesChangedShare = sums.codes.flatMap { Self.ratio(Double($0.scalesChanged), Double($0.scaleCount)) }
        probeRelativeError = Self.ratio(sums.probeErrorSquared.squareRoot(), sums.probeEffectSquared.squareRoot())
    }

    /// The figures of several tensors taken together, from the sum of their ``Sums`` (added in the order
    /// given, so the total is deterministic).
    public static func total<Parts: Sequence>(_ parts: Parts) -> FidelityMetrics where Parts.Element == FidelityMetrics {
        FidelityMetrics(sums: parts.reduce(Sums.zero) { $0 + $1.sums })
    }

    private static func ratio(_ numerator: Double, _ denominator: Double) -> Double? {
        denominator > 0 ? numerator / denominator : nil
    }
}
