/// The seven linear layers of a Llama decoder layer, the modules LoRA adapters usually target.
public enum LlamaProjection: String, Sendable, Hashable, Codable, CaseIterable {
    case query = "q_proj"
    case key = "k_proj"
    case value = "v_proj"
    case output = "o_proj"
    case gate = "gate_proj"
    case up = "up_proj"
    case down = "down_proj"

    /// The PEFT module name, e.g. `q_proj`.
    public var moduleName: String { rawValue }

    /// The path inside a decoder layer, e.g. `self_attn.q_proj`.
    public var path: String {
        switch self {
        case .query, .key, .value, .output: "self_attn.\(rawValue)"
        case .gate, .up, .down: "mlp.\(rawValue)"
        }
    }

    /// The module path in layer `layer`, e.g. `model.layers.3.self_attn.q_proj`.
    public func modulePath(layer: Int) -> String {
        "model.layers.\(layer).\(path)"
    }

    /// The weight's shape `[out, in]` in a model of `dimensions`.
    public func weightShape(_ dimensions: SyntheticModel.Dimensions) -> [Int] {
        let hidden = dimensions.hiddenSize
        let keyValue = dimensions.keyValueHeads * dimensions.headDimension
        let attention = dimensions.attentionHeads * dimensions.headDimension
        return switch self {
        case .query: [attention, hidden]
        case .key, .value: [keyValue, hidden]
        case .output: [hidden, attention]
        case .gate, .up: [dimensions.intermediateSize, hidden]
        case .down: [hidden, dimensions.intermediateSize]
        }
    }
}
