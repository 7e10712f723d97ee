import Foundation

/// A Llama-shaped base model with random weights, written as a Hugging Face folder exactly as
/// `LlamaForCausalLM.save_pretrained` lays it out: `config.json`, `generation_config.json`, and
/// `model.safetensors` (or shards `model-0000i-of-0000N.safetensors` with `model.safetensors.index.json`).
///
/// Tensor names and shapes are transformers' (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`
/// `[out, in]`, ..., `model.norm.weight`, `lm_head.weight`, untied). Linear and embedding weights are
/// N(0, 0.02) (``SyntheticRandom/normal()``), RMSNorm weights 1 + 0.1·N(0, 1). Every tensor's values come
/// from a stream named after the tensor, so they depend on the seed and the tensor only: the same tensor
/// has the same bytes whatever the layer count or the shard layout.
///
/// As safetensors writes them, each file's tensors are in name order; shards take the tensors in
/// state-dict order (embeddings, layers, final norm, head), each up to the maximum shard size.
public struct SyntheticModel: Sendable, Hashable {
    /// The dimensions of a Llama architecture apart from the layer count.
    public struct Dimensions: Sendable, Hashable {
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var attentionHeads: Int
        public var keyValueHeads: Int
        public var vocabularySize: Int
        public var maxPositionEmbeddings: Int

        public init(
            hiddenSize: Int, intermediateSize: Int, attentionHeads: Int, keyValueHeads: Int, vocabularySize: Int,
            maxPositionEmbeddings: Int = 2048
        ) {
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.attentionHeads = attentionHeads
            self.keyValueHeads = keyValueHeads
            self.vocabularySize = vocabularySize
            self.maxPositionEmbeddings = maxPositionEmbeddings
        }

        /// `head_dim`: hidden size / attention heads.
        public var headDimension: Int { hiddenSize / max(attentionHeads, 1) }

        /// The shape of the PEFT micro fixtures (hidden 64, intermediate 172, 4 heads, 2 kv heads, vocab 256).
        public static let micro = Dimensions(
            hiddenSize: 64, intermediateSize: 172, attentionHeads: 4, keyValueHeads: 2, vocabularySize: 256,
            maxPositionEmbeddings: 64)
        /// A small Llama with a full 32000-token vocabulary (hidden 256, intermediate 688, 4 heads, 2 kv heads).
        public static let mini = Dimensions(
            hiddenSize: 256, intermediateSize: 688, attentionHeads: 4, keyValueHeads: 2, vocabularySize: 32000)
        /// SmolLM-135M's shape (hidden 576, intermediate 1536, 9 heads, 3 kv heads, vocab 49152).
        public static let smolLM = Dimensions(
            hiddenSize: 576, intermediateSize: 1536, attentionHeads: 9, keyValueHeads: 3, vocabularySize: 49152)
        /// TinyLlama-1.1B's shape (hidden 2048, intermediate 5632, 32 heads, 4 kv heads, vocab 32000).
        public static let tinyLlama = Dimensions(
            hiddenSize: 2048, intermediateSize: 5632, attentionHeads: 32, keyValueHeads: 4, vocabularySize: 32000)
        /// Llama-2-7B's shape (hidden 4096, intermediate 11008, 32 heads, 32 kv heads, vocab 32000).
        public static let llama2 = Dimensions(
            hiddenSize: 4096, intermediateSize: 11008, attentionHeads: 32, keyValueHeads: 32, vocabularySize: 32000,
            maxPositionEmbeddings: 4096)

        /// The presets, smallest first.
        public static let presets: [Dimensions] = [.micro, .mini, .smolLM, .tinyLlama, .llama2]

        /// Parameters of one decoder layer.
        var layerParameters: Int {
            LlamaProjection.allCases.reduce(2 * hiddenSize) { $0 + $1.weightShape(self).reduce(1, *) }
        }

        /// Parameters outside the layers: embeddings, head and final norm.
        var outerParameters: Int {
            2 * vocabularySize * hiddenSize + hiddenSize
        }
    }

    /// One tensor of the model.
    public struct Tensor: Sendable, Hashable {
        public let name: String
        public let shape: [Int]
        /// RMSNorm weights (1 + 0.1·N(0, 1)) rather than linear or embedding weights (N(0, 0.02)).
        public let isNorm: Bool
    }

    public var dimensions: Dimensions
    /// `num_hidden_layers`.
    public var layers: Int
    /// The tensors' type: F32, F16 or BF16 (`dtype` in the config, transformers 5's name for `torch_dtype`).
    public var dtype: DType
    public var seed: UInt64
    /// Split the safetensors into shards of at most this many tensor bytes; nil writes one file.
    public var maxShardSize: Int?

    public init(dimensions: Dimensions, layers: Int, dtype: DType = .bf16, seed: UInt64 = 0, maxShardSize: Int? = nil) {
        self.dimensions = dimensions
        self.layers = layers
        self.dtype = dtype
        self.seed = seed
        self.maxShardSize = maxShardSize
    }

    /// A model of about `bytes` bytes of tensors: the largest preset shape whose embeddings, head and two
    /// layers fit (the smallest preset otherwise), with as many layers as reach `bytes` (at least one).
    /// The result is at least `bytes` and exceeds it by less than one layer, unless one layer is already more.
    public static func sized(
        bytes: Int, dtype: DType = .bf16, seed: UInt64 = 0, maxShardSize: Int? = nil
    ) -> SyntheticModel {
        let width = dtype.byteWidth ?? 2
        let dimensions = Dimensions.presets.last {
            ($0.outerParameters + 2 * $0.layerParameters) * width <= bytes
        } ?? Dimensions.micro
        let layerBytes = dimensions.layerParameters * width
        let remaining = bytes - dimensions.outerParameters * width
        let layers = max(1, (remaining + layerBytes - 1) / layerBytes)
        return SyntheticModel(dimensions: dimensions, layers: layers, dtype: dtype, seed: seed, maxShardSize: maxShardSize)
    }

    /// The tensors in state-dict order.
    public var tensors: [Tensor] {
        let hidden = dimensions.hiddenSize
        var tensors = [Tensor(name: "model.embed_tokens.weight", shape: [dimensions.vocabularySize, hidden], isNorm: false)]
        for layer in 0..<max(layers, 0) {
            for projection in LlamaProjection.allCases {
                tensors.append(Tensor(
                    name: projection.modulePath(layer: layer) + ".weight", shape: projection.weightShape(dimensions),
                    isNorm: false))
            }
            for norm in ["input_layernorm", "post_attention_layernorm"] {
                tensors.append(Tensor(name: "model.layers.\(layer).\(norm).weight", shape: [hidden], isNorm: true))
            }
        }
        tensors.append(Tensor(name: "model.norm.weight", shape: [hidden], isNorm: true))
        tensors.append(Tensor(name: "lm_head.weight", shape: [dimensions.vocabularySize, hidden], isNorm: false))
        return tensors
    }

    /// The number of parameters.
    public var parameterCount: Int {
        dimensions.outerParameters + max(layers, 0) * dimensions.layerParameters
    }

    /// Bytes of tensor data.
    public var byteCount: Int {
        parameterCount * (dtype.byteWidth ?? 0)
    }

    /// Checks that the model can be generated.
    /// - Throws: ``SyntheticError`` when the type is not F32, F16 or BF16 or a dimension is not positive
    ///   or does not divide as Llama needs.
    public func validate() throws(SyntheticError) {
        guard dtype.isMergeable else { throw .unsupportedDType(dtype) }
        let d = dimensions
        guard layers > 0, d.hiddenSize > 0, d.intermediateSize > 0, d.attentionHeads > 0, d.keyValueHeads > 0,
              d.vocabularySize > 0, d.maxPositionEmbeddings > 0
        else { throw .invalidConfiguration("layers and every dimension must be positive") }
        guard d.hiddenSize % d.attentionHeads == 0, d.attentionHeads % d.keyValueHeads == 0 else {
            throw .invalidConfiguration(
                "hidden size \(d.hiddenSize) must divide into \(d.attentionHeads) heads, and those into \(d.keyValueHeads) kv heads")
        }
        if let maxShardSize, maxShardSize <= 0 { throw .invalidConfiguration("the maximum shard size must be positive") }
    }

    /// Writes the model folder at `folder`, which must not exist or be empty, and returns the names of the
    /// files written.
    ///
    /// Tensors are generated one at a time on every core into one reused buffer and streamed to disk; files
    /// are not synced.
    /// - Throws: ``SyntheticError`` for an invalid model or a non-empty destination; file errors.
    @discardableResult
    public func write(to folder: URL) throws -> [String] {
        try validate()
        try Self.prepare(folder)
        var files: [String] = []
        for (name, contents) in [("config.json", configJSON()), ("generation_config.json", Self.generationConfigJSON())] {
            try contents.write(to: folder.appending(path: name))
            files.append(name)
        }
        let tensors = self.tensors
        let capacity = tensors.map { byteCount(of: $0) }.max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
        defer { buffer.deallocate() }
        let shards = shardGroups(tensors)
        var weightMap: [String: String] = [:]
        for (number, shard) in shards.enumerated() {
            let name = shards.count == 1
                ? ModelLayout.singleFileName
                : String(format: "model-%05d-of-%05d.safetensors", number + 1, shards.count)
            let ordered = shard.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            let header = try SafetensorsHeader(
                tensors: ordered.map { ($0.name, dtype, $0.shape) }, metadata: ["format": "pt"], label: name)
            let writer = try SafetensorsWriter(url: folder.appending(path: name), header: header)
            for tensor in ordered {
                let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<byteCount(of: tensor)])
                try fill(bytes, tensor)
                try writer.append(UnsafeRawBufferPointer(bytes))
                weightMap[tensor.name] = name
            }
            try writer.finish(sync: false)
            files.append(name)
        }
        if shards.count > 1 {
            let index = try ShardIndex(totalSize: byteCount, totalParameters: parameterCount, weightMap: weightMap)
            try index.encoded().write(to: folder.appending(path: ShardIndex.fileName))
            files.append(ShardIndex.fileName)
        }
        return files
    }

    /// Generates the values of `tensor` into `bytes` (exactly its byte size).
    public func fill(_ bytes: UnsafeMutableRawBufferPointer, _ tensor: Tensor) throws(SyntheticError) {
        let distribution: SyntheticRandom.Distribution = tensor.isNorm
            ? .normal(mean: 1, standardDeviation: 0.1)
            : .normal(mean: 0, standardDeviation: 0.02)
        try SyntheticRandom.fill(
            bytes, dtype: dtype, distribution: distribution, seed: SyntheticRandom.derive(seed, tensor.name))
    }

    private func byteCount(of tensor: Tensor) -> Int {
        tensor.shape.reduce(1, *) * (dtype.byteWidth ?? 0)
    }

    /// Tensors in state-dict order, cut into shards as transformers does: a shard takes tensors until the
    /// next would exceed the maximum.
    private func shardGroups(_ tensors: [Tensor]) -> [[Tensor]] {
        guard let maxShardSize else { return [tensors] }
        var groups: [[Tensor]] = [[]]
        var size = 0
        for tensor in tensors {
            let bytes = byteCount(of: tensor)
            if size > 0, size + bytes > maxShardSize {
                groups.append([])
                size = 0
            }
            groups[groups.count - 1].append(tensor)
            size += bytes
        }
        return groups
    }

    /// `config.json` as transformers 5 writes it for `LlamaForCausalLM`.
    public func configJSON() -> Data {
        let d = dimensions
        let torchType = dtype.torchName ?? "bfloat16"
        let config = OrderedJSON.object([
            .init(key: "architectures", value: .array([.string("LlamaForCausalLM")])),
            .init(key: "attention_bias", value: .bool(false)),
            .init(key: "attention_dropout", value: .pythonFloat(0)),
            .init(key: "bos_token_id", value: .pythonInt(1)),
            .init(key: "dtype", value: .string(torchType)),
            .init(key: "eos_token_id", value: .pythonInt(2)),
            .init(key: "head_dim", value: .pythonInt(d.headDimension)),
            .init(key: "hidden_act", value: .string("silu")),
            .init(key: "hidden_size", value: .pythonInt(d.hiddenSize)),
            .init(key: "initializer_range", value: .pythonFloat(0.02)),
            .init(key: "intermediate_size", value: .pythonInt(d.intermediateSize)),
            .init(key: "max_position_embeddings", value: .pythonInt(d.maxPositionEmbeddings)),
            .init(key: "mlp_bias", value: .bool(false)),
            .init(key: "model_type", value: .string("llama")),
            .init(key: "num_attention_heads", value: .pythonInt(d.attentionHeads)),
            .init(key: "num_hidden_layers", value: .pythonInt(layers)),
            .init(key: "num_key_value_heads", value: .pythonInt(d.keyValueHeads)),
            .init(key: "pad_token_id", value: .null),
            .init(key: "pretraining_tp", value: .pythonInt(1)),
            .init(key: "rms_norm_eps", value: .pythonFloat(1e-5)),
            .init(key: "rope_parameters", value: .object([
                .init(key: "rope_theta", value: .pythonFloat(10000)),
                .init(key: "rope_type", value: .string("default")),
            ])),
            .init(key: "tie_word_embeddings", value: .bool(false)),
            .init(key: "transformers_version", value: .string(Self.transformersVersion)),
            .init(key: "use_cache", value: .bool(true)),
            .init(key: "vocab_size", value: .pythonInt(d.vocabularySize)),
        ])
        return Data(config.pythonIndented() + Array("\n".utf8))
    }

    /// `generation_config.json` as transformers 5 writes it.
    public static func generationConfigJSON() -> Data {
        let config = OrderedJSON.object([
            .init(key: "_from_model_config", value: .bool(true)),
            .init(key: "bos_token_id", value: .pythonInt(1)),
            .init(key: "eos_token_id", value: .pythonInt(2)),
            .init(key: "output_attentions", value: .bool(false)),
            .init(key: "output_hidden_states", value: .bool(false)),
            .init(key: "transformers_version", value: .string(transformersVersion)),
            .init(key: "use_cache", value: .bool(true)),
        ])
        return Data(config.pythonIndented() + Array("\n".utf8))
    }

    /// The transformers version the files imitate (that of the PEFT fixtures).
    static let transformersVersion = "5.24.0"

    /// Creates `folder`, refusing one that holds anything.
    static func prepare(_ folder: URL) throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: folder.path) {
            let contents = (try? manager.contentsOfDirectory(atPath: folder.path)) ?? ["?"]
            guard contents.isEmpty else { throw SyntheticError.destinationNotEmpty(path: folder.path) }
        }
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
    }
}
