/// One base tensor a LoRA adapter changes through low-rank factors, with everything a merge needs to know.
public struct AdapterModule: Sendable, Hashable {
    /// How the factors combine into a delta of the base tensor's layout.
    public enum Kind: String, Sendable, Hashable {
        /// `Linear` (delta = B·A, `[out, in]`), or `Conv1D` with `fan_in_fan_out` (delta = (B·A)ᵀ).
        case linear
        /// `Embedding` (`lora_embedding_A/B`): delta = (B·A)ᵀ, `[vocab, dim]`.
        case embedding
        /// `Conv1d/2d/3d` with `groups == 1`: delta = B·A over the flattened kernel.
        case convolution
    }

    /// The module path, without `base_model.model.` (`model.layers.0.self_attn.q_proj`).
    public var path: String
    /// The base tensor changed (`<path>.weight`).
    public var target: String
    public var kind: Kind
    /// The rank, as the factors have it.
    public var rank: Int
    /// alpha / r (or alpha / √r with rsLoRA), per module.
    public var scale: Double
    /// The key of A (`lora_A.weight` or `lora_embedding_A`).
    public var keyA: String
    /// The key of B.
    public var keyB: String
    /// The DoRA magnitude vector's key, when the module uses DoRA.
    public var magnitudeKey: String?
    /// The LoRA bias (`lora_B.bias`) key, which adds scale · bias to the base's `<path>.bias`.
    public var biasKey: String?
    /// The delta is transposed relative to B·A: the base stores `[in, out]` (fan_in_fan_out) or is an
    /// embedding.
    public var transposed: Bool
    /// Rows and columns of the base tensor viewed as a matrix (convolution kernels flattened).
    public var rows: Int
    public var columns: Int
}
