import Foundation

/// A LoRA adapter for a ``SyntheticModel`` with random factors, written as PEFT 0.21's `save_pretrained`
/// writes it: `adapter_config.json` (PEFT's full field set, keys sorted, two-space indent, no final
/// newline) and `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` `[r, in]` and
/// `lora_B.weight` `[out, r]` in name order and `__metadata__` `{"format": "pt"}`.
///
/// A is drawn as PEFT initialises it (Kaiming-uniform, U(±1/√in)); B, which PEFT starts at zero, is
/// N(0, 0.01), as after training, so every module changes its weight. Values come from streams named after
/// the tensors, so they depend on the seed and the tensor only.
public struct SyntheticAdapter: Sendable, Hashable {
    /// The model the adapter is trained on (shapes and layer count).
    public var base: SyntheticModel
    /// `r`.
    public var rank: Int
    /// `lora_alpha`; written as a Python int when integral, as PEFT users usually pass it.
    public var alpha: Double
    /// `target_modules`, written in this order.
    public var targets: [LlamaProjection]
    /// `layers_to_transform`: the layers that get modules; nil for all.
    public var layers: [Int]?
    /// The factors' type: F32 or BF16.
    public var dtype: DType
    public var useRSLoRA: Bool
    public var seed: UInt64
    /// `base_model_name_or_path`.
    public var baseModelName: String

    /// Standard deviation of B.
    static let bStandardDeviation: Float = 0.01

    /// An adapter of `rank` with `alpha` (default 2·rank) on `targets` of every layer (or `layers`).
    public init(
        base: SyntheticModel, rank: Int = 16, alpha: Double? = nil, targets: [LlamaProjection] = LlamaProjection.allCases,
        layers: [Int]? = nil, dtype: DType = .f32, useRSLoRA: Bool = false, seed: UInt64 = 1,
        baseModelName: String = "synthetic/llama"
    ) {
        self.base = base
        self.rank = rank
        self.alpha = alpha ?? Double(2 * rank)
        self.targets = targets
        self.layers = layers
        self.dtype = dtype
        self.useRSLoRA = useRSLoRA
        self.seed = seed
        self.baseModelName = baseModelName
    }

    /// One factor of one module.
    public struct Tensor: Sendable, Hashable {
        public let name: String
        public let shape: [Int]
        /// A (`[r, in]`, uniform) rather than B (`[out, r]`, normal).
        public let isA: Bool
    }

    /// The factors, in name order (as the file holds them).
    public var tensors: [Tensor] {
        var tensors: [Tensor] = []
        for layer in layers ?? Array(0..<base.layers) {
            for projection in targets {
                let shape = projection.weightShape(base.dimensions)
                let prefix = "base_model.model.\(projection.modulePath(layer: layer))"
                tensors.append(Tensor(name: prefix + ".lora_A.weight", shape: [rank, shape[1]], isA: true))
                tensors.append(Tensor(name: prefix + ".lora_B.weight", shape: [shape[0], rank], isA: false))
            }
        }
        return tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// Bytes of tensor data.
    public var byteCount: Int {
        tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } * (dtype.byteWidth ?? 0)
    }

    /// The merge scale: alpha / r, or alpha / √r with rsLoRA.
    public var scale: Double {
        useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    /// Checks that the adapter can be generated.
    /// - Throws: ``SyntheticError`` for a type other than F32 or BF16, a rank that is not positive, no or
    ///   repeated targets, layers outside the base, or an invalid base.
    public func validate() throws(SyntheticError) {
        try base.validate()
        guard dtype == .f32 || dtype == .bf16 else { throw .unsupportedDType(dtype) }
        guard rank > 0 else { throw .invalidConfiguration("the rank must be positive") }
        guard alpha.isFinite else { throw .invalidConfiguration("alpha must be a finite number") }
        guard !targets.isEmpty, Set(targets).count == targets.count else {
            throw .invalidConfiguration("target modules must be given once each, at least one")
        }
        if let layers {
            guard !layers.isEmpty, Set(layers).count == layers.count, layers.allSatisfy({ (0..<base.layers).contains($0) })
            else { throw .invalidConfiguration("layers must be distinct layers of the \(base.layers)-layer base") }
        }
    }

    /// Writes the adapter folder at `folder`, which must not exist or be empty.
    /// - Throws: ``SyntheticError`` for an invalid adapter or a non-empty destination; file errors.
    public func write(to folder: URL) throws {
        try validate()
        try SyntheticModel.prepare(folder)
        try configJSON().write(to: folder.appending(path: PushSource.adapterConfigName))
        let tensors = self.tensors
        let width = dtype.byteWidth ?? 0
        let header = try SafetensorsHeader(
            tensors: tensors.map { ($0.name, dtype, $0.shape) }, metadata: ["format": "pt"],
            label: PushSource.adapterWeightsName)
        let capacity = tensors.map { $0.shape.reduce(1, *) * width }.max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
        defer { buffer.deallocate() }
        let writer = try SafetensorsWriter(url: folder.appending(path: PushSource.adapterWeightsName), header: header)
        for tensor in tensors {
            let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(tensor.shape.reduce(1, *) * width)])
            let distribution: SyntheticRandom.Distribution = tensor.isA
                ? .uniform(bound: 1 / Float(tensor.shape[1]).squareRoot())
                : .normal(mean: 0, standardDeviation: Self.bStandardDeviation)
            try SyntheticRandom.fill(
                bytes, dtype: dtype, distribution: distribution, seed: SyntheticRandom.derive(seed, tensor.name))
            try writer.append(UnsafeRawBufferPointer(bytes))
        }
        try writer.finish(sync: false)
    }

    /// `adapter_config.json` with PEFT 0.21.2's fields and defaults.
    public func configJSON() -> Data {
        let alphaValue: OrderedJSON = alpha.rounded() == alpha && abs(alpha) < 1e15
            ? .pythonInt(Int(alpha))
            : .pythonFloat(alpha)
        let layerValue: OrderedJSON = layers.map { .array($0.map { .pythonInt($0) }) } ?? .null
        let config = OrderedJSON.object([
            .init(key: "alora_invocation_tokens", value: .null),
            .init(key: "alpha_pattern", value: .object([])),
            .init(key: "arrow_config", value: .null),
            .init(key: "auto_mapping", value: .object([
                .init(key: "base_model_class", value: .string("LlamaForCausalLM")),
                .init(key: "parent_library", value: .string("transformers.models.llama.modeling_llama")),
            ])),
            .init(key: "base_model_name_or_path", value: .string(baseModelName)),
            .init(key: "bias", value: .string("none")),
            .init(key: "corda_config", value: .null),
            .init(key: "ensure_weight_tying", value: .bool(false)),
            .init(key: "eva_config", value: .null),
            .init(key: "exclude_modules", value: .null),
            .init(key: "fan_in_fan_out", value: .bool(false)),
            .init(key: "inference_mode", value: .bool(true)),
            .init(key: "init_lora_weights", value: .bool(true)),
            .init(key: "kasa_config", value: .null),
            .init(key: "layer_replication", value: .null),
            .init(key: "layers_pattern", value: .null),
            .init(key: "layers_to_transform", value: layerValue),
            .init(key: "loftq_config", value: .object([])),
            .init(key: "lora_alpha", value: alphaValue),
            .init(key: "lora_bias", value: .bool(false)),
            .init(key: "lora_dropout", value: .pythonFloat(0)),
            .init(key: "lora_ga_config", value: .null),
            .init(key: "megatron_config", value: .null),
            .init(key: "megatron_core", value: .string("megatron.core")),
            .init(key: "modules_to_save", value: .null),
            .init(key: "monteclora_config", value: .null),
            .init(key: "peft_type", value: .string("LORA")),
            .init(key: "peft_version", value: .string(Self.peftVersion)),
            .init(key: "qalora_group_size", value: .pythonInt(16)),
            .init(key: "r", value: .pythonInt(rank)),
            .init(key: "rank_pattern", value: .object([])),
            .init(key: "revision", value: .null),
            .init(key: "target_modules", value: .array(targets.map { .string($0.moduleName) })),
            .init(key: "target_parameters", value: .null),
            .init(key: "task_type", value: .null),
            .init(key: "trainable_token_indices", value: .null),
            .init(key: "use_bdlora", value: .null),
            .init(key: "use_dora", value: .bool(false)),
            .init(key: "use_qalora", value: .bool(false)),
            .init(key: "use_rslora", value: .bool(useRSLoRA)),
            .init(key: "velora_config", value: .null),
        ])
        return Data(config.pythonIndented())
    }

    /// The PEFT version the config imitates (that of the PEFT fixtures).
    static let peftVersion = "0.21.2"
}
