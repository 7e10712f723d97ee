import Foundation

/// How faithfully a materialized build carries its adapters, per touched tensor and in total: the output as
/// merged next to the same adapters applied on the fly (``FidelityMeasure``), both against the exact F32
/// result from the same inputs.
///
/// Computed during the build's first materialization (only the tensors a low-rank update touches; DoRA,
/// `modules_to_save` and bias tensors are not measured) and stored with the build.
public struct BuildReport: Sendable, Hashable, Codable {
    /// One measured tensor.
    public struct Tensor: Sendable, Hashable, Codable {
        public var name: String
        public var fidelity: FidelityMeasure.Comparison

        public init(name: String, fidelity: FidelityMeasure.Comparison) {
            self.name = name
            self.fidelity = fidelity
        }
    }

    /// Which figures describe what the build's output does.
    public enum Application: String, Sendable, Hashable, Codable {
        /// The output holds the merged weights.
        case merged
        /// The output keeps the base and the adapters apart (``QuantizedBuildPolicy/separate``).
        case onTheFly = "on-the-fly"
    }

    public var build: Digest
    /// The policy on a quantized base; nil for a float base.
    public var policy: QuantizedBuildPolicy?
    public var application: Application
    /// The probe the output figures were measured with.
    public var probe: FidelityMeasure.Probe
    /// The measured tensors, in output order.
    public var tensors: [Tensor]
    /// All measured tensors together.
    public var total: FidelityMeasure.Comparison

    /// Builds the report of `build` from its measured tensors.
    public init(build: Digest, options: MergeOptions, tensors: [Tensor]) {
        self.build = build
        policy = options.quantizedBase
        application = Self.application(of: options)
        probe = .standard
        self.tensors = tensors
        total = FidelityMeasure.Comparison.total(tensors.map(\.fidelity))
    }

    /// How a merge with `options` applies its adapters.
    static func application(of options: MergeOptions) -> Application {
        options.quantizedBase == .separate ? .onTheFly : .merged
    }

    /// The share of the adapters a merge with `options` loses, from its measured tensors (see
    /// ``adapterLoss``).
    static func adapterLoss(of tensors: [Tensor], options: MergeOptions) -> Double? {
        let total = FidelityMeasure.Comparison.total(tensors.map(\.fidelity))
        let applied = application(of: options) == .merged ? total.merged : total.onTheFly
        return applied.relativeError
    }

    /// The figures of what the output applies: merged, or on the fly for `separate`.
    public var applied: FidelityMetrics {
        application == .merged ? total.merged : total.onTheFly
    }

    /// The share of the adapters the output loses: how far it is from the exact merge, as a share of the
    /// adapters' own size (``FidelityMetrics/relativeError`` of ``applied``, `‖W_out − W_exact‖ / ‖Δ‖`). 0 is
    /// exact, 1 is as far as dropping the adapters; it can exceed 1. nil when nothing was measured or the
    /// adapters change nothing.
    ///
    /// Not `1 −` the surviving share: rounding noise leaves that near 1 when a delta smaller than the base's
    /// quantization step moves some codes a whole step and leaves the rest, so the adapter survives on average
    /// while most of its elements are wrong. The relative error is never below `|1 − survived|`.
    public var adapterLoss: Double? {
        applied.relativeError
    }

    /// One line for people: the surviving share and errors as applied, next to the on-the-fly figures.
    public var summary: String {
        guard !tensors.isEmpty else { return "fidelity: no tensor measured" }
        func share(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "n/a" }
        let fly = total.onTheFly
        var line = "fidelity (\(tensors.count) tensors, \(application.rawValue)): adapter survived \(share(applied.survivedShare)), "
            + "relative error \(share(applied.relativeError)), output probe error \(share(applied.probeRelativeError))"
        if let moved = applied.codesMovedShare { line += ", codes moved \(share(moved))" }
        if application == .merged {
            line += "; on the fly: survived \(share(fly.survivedShare)), probe error \(share(fly.probeRelativeError))"
        }
        return line
    }
}
