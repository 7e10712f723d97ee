/// How several adapters on one tensor combine.
public enum CombineMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// W' = W + Σ wᵢ·sᵢ·Bᵢ·Aᵢ: the exact weighted sum of the adapters' deltas (PEFT's `cat` combination
    /// without its quirks). Weights may be negative.
    case exact
    /// PEFT's `add_weighted_adapter(..., combination_type="linear")`: A and B are summed separately,
    /// each scaled by √|wᵢ·sᵢ| (the sign of wᵢ·sᵢ goes to A), so W' = W + s·(Σ cᵢBᵢ)(Σ ±cᵢAᵢ), cross terms
    /// included, where s is √r when the first adapter uses rsLoRA (PEFT's combined adapter has
    /// r = lora_alpha) and 1 otherwise. Requires equal ranks. Offered to reproduce PEFT, not because it is
    /// the right sum.
    case peftLinear = "peft-linear"
}
