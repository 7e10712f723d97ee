/// How the tensors of a PEFT adapter file map onto a base model, checked shape by shape.
///
/// Keys are PEFT's saved names: `base_model.model.<module>.lora_A.weight`, `...lora_B.weight`,
/// `...lora_embedding_A/B`, `...lora_magnitude_vector` (DoRA), `...lora_B.bias`, full tensors of
/// `modules_to_save` under their base names, and `<module>.base_layer.<tensor>` copies of a LoRA module's
/// own tensors (PEFT writes trained biases there with `bias="lora_only"` or `"all"`, and whole embedding
/// layers with `save_embedding_layers`; loading puts them into the model). Anything else, a missing base
/// tensor or a shape that does not fit is an error naming the key, so an adapter trained for another base is
/// refused at push time.
public struct AdapterLayout: Sendable, Hashable {
    /// Modules changed through low-rank factors, in the order of their base tensors.
    public var modules: [AdapterModule]
    /// Base tensors replaced whole (`modules_to_save`): base name → adapter key.
    public var replacements: [String: String]
    /// Modules the file has factors for but `adapter_config.json` does not target: PEFT never loads them,
    /// so neither does a merge.
    public var untargetedModules: [String]
    /// DoRA magnitude vectors of an adapter whose config has `use_dora` false: PEFT does not load them, so
    /// neither does a merge.
    public var ignoredMagnitudes: [String]
    /// Keys of PEFT's own `modules_to_save` wrappers (`X.modules_to_save.bias`, `X.original_module.bias`)
    /// that `bias="all"` saves beside the module's tensors: loading puts none of them into the merged
    /// model, so a merge skips them.
    public var wrapperCopies: [String]
    /// `base_layer` copies: base tensor name → adapter key. The merge plan compares their bytes with the
    /// base's: an equal copy changes nothing, a different one replaces the base tensor as PEFT's loading does.
    public var baseLayerCopies: [String: String]

    /// The prefix PEFT gives every saved key.
    public static let keyPrefix = "base_model.model."

    /// A tensor's name, type and shape: what the analysis needs from either side.
    public struct Signature: Sendable, Hashable {
        public var dtype: DType
        public var shape: [Int]

        public init(dtype: DType, shape: [Int]) {
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// Analyses `tensors` (adapter key → signature, in file order) against the base.
    ///
    /// - Parameters:
    ///   - file: how to name the adapter file in errors.
    ///   - baseTensors: base tensor name → signature.
    ///   - baseOrder: the base's tensor names in file order, so modules come out in merge order.
    public init(
        file: String, tensors: [(key: String, signature: Signature)], config: AdapterConfig,
        baseTensors: [String: Signature], baseOrder: [String], baseModelType: String? = nil
    ) throws {
        func mismatch(_ key: String, _ reason: String) -> StoreError {
            .adapterMismatch(file: file, key: key, reason: reason)
        }
        var targeting = config
        if case .unspecified = config.targetModules {
            guard let baseModelType, let defaults = PeftDefaultTargets.targetModules(forModelType: baseModelType) else {
                let base = baseModelType.map { "model type \"\($0)\"" } ?? "a base without a config.json model_type"
                throw StoreError.invalidInput(
                    path: file,
                    reason: "its adapter_config.json has no target_modules, and PEFT has no default targets for \(base) (it refuses such an adapter too); set target_modules")
            }
            targeting.targetModules = defaults
        }
        let matcher: ModuleMatcher
        do {
            matcher = try ModuleMatcher(targeting)
        } catch {
            throw StoreError.invalidInput(path: file, reason: "its adapter_config.json holds a pattern lorastore cannot match: \(error)")
        }
        var factors: [String: Factors] = [:]
        var replacements: [String: String] = [:]
        var baseLayerCopies: [String: String] = [:]
        var wrapperCopies: [String] = []
        let signatures = Dictionary(tensors.map { ($0.key, $0.signature) }, uniquingKeysWith: { first, _ in first })

        for (key, signature) in tensors {
            guard key.hasPrefix(Self.keyPrefix) else {
                throw mismatch(key, "PEFT adapter keys start with \"\(Self.keyPrefix)\"")
            }
            guard signature.dtype.isMergeable else {
                throw mismatch(key, "dtype \(signature.dtype.rawValue) is not a float type lorastore merges (F32, F16, BF16)")
            }
            let name = String(key.dropFirst(Self.keyPrefix.count))
            if let range = name.range(of: ".base_layer.") {
                let target = String(name[..<range.lowerBound]) + "." + name[range.upperBound...]
                guard let base = baseTensors[target] else {
                    throw mismatch(key, "copies \"\(target)\", which the base does not have" + Self.tiedHint(target))
                }
                guard base.shape == signature.shape else {
                    throw mismatch(key, "shape \(signature.shape) does not match the base's \(target) \(base.shape)")
                }
                baseLayerCopies[target] = key
                continue
            }
            if let (path, role) = Self.splitFactorKey(name) {
                factors[path, default: Factors()].set(role, key: key)
                continue
            }
            // With bias="all", PEFT saves every bias of the model, its modules_to_save wrappers' inner copies
            // too: `X.modules_to_save.bias` and `X.original_module.bias` of a module X it saves, which the base
            // (unwrapped) does not have.
            if config.bias == "all", baseTensors[name] == nil, let wrapped = Self.wrappedModule(of: name),
               config.savesModule(wrapped) {
                wrapperCopies.append(key)
                continue
            }
            let module = [".weight", ".bias"].first(where: name.hasSuffix).map { String(name.dropLast($0.count)) } ?? name
            // With bias="all", PEFT saves every bias of the model, targeted or not, under its own name.
            guard config.savesModule(module) || (config.bias == "all" && name.hasSuffix(".bias")) else {
                throw mismatch(key, "not a LoRA factor, and \"\(module)\" is not in modules_to_save")
            }
            guard let base = baseTensors[name] else {
                throw mismatch(key, "replaces \"\(name)\", which the base does not have" + Self.tiedHint(name))
            }
            guard base.shape == signature.shape else {
                throw mismatch(key, "shape \(signature.shape) does not match the base's \(name) \(base.shape)")
            }
            replacements[name] = key
        }

        // Modules in base order (unknown ones last, by name), so errors and merges are deterministic.
        let position = Dictionary(baseOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let ordered = factors.keys.sorted {
            (position[$0 + ".weight"] ?? .max, $0) < (position[$1 + ".weight"] ?? .max, $1)
        }
        var paths: [String] = []
        var untargeted: [String] = []
        for path in ordered {
            let targeted: Bool
            do {
                targeted = try matcher.targets(module: path)
            } catch {
                throw mismatch(factors[path]?.a ?? path, "matching module \"\(path)\" against adapter_config.json's patterns: \(error)")
            }
            if targeted { paths.append(path) } else { untargeted.append(path) }
        }
        if paths.isEmpty, let first = untargeted.first {
            throw mismatch(
                factors[first]?.a ?? first,
                "adapter_config.json targets none of the \(untargeted.count) modules the file has factors for (see target_modules, exclude_modules, layers_to_transform)")
        }
        // PEFT keeps a magnitude vector only for a DoRA config; without one it loads none, and with one it
        // would make up a missing vector from the base weight and the factors' initial values as it loads.
        var ignoredMagnitudes: [String] = []
        for path in paths {
            guard let magnitude = factors[path]?.magnitude else {
                if config.useDoRA {
                    throw mismatch(
                        factors[path]?.a ?? path,
                        "use_dora is true but module \"\(path)\" has no lora_magnitude_vector; PEFT would make one up from the base weight as it loads, which lorastore does not reproduce")
                }
                continue
            }
            if !config.useDoRA {
                ignoredMagnitudes.append(magnitude)
                factors[path]?.magnitude = nil
            }
        }
        let modules = try paths.map { path in
            try Self.module(
                path: path, parts: factors[path] ?? Factors(), signatures: signatures, matcher: matcher,
                fanInFanOut: Self.storesInputsFirst(module: path, baseModelType: baseModelType, config: config),
                baseTensors: baseTensors, mismatch: mismatch)
        }
        if let clash = modules.first(where: { replacements[$0.target] != nil }) {
            throw mismatch(clash.keyA, "\(clash.target) is both replaced (modules_to_save) and changed by LoRA")
        }
        self.modules = modules
        self.replacements = replacements
        self.baseLayerCopies = baseLayerCopies
        self.untargetedModules = untargeted
        self.ignoredMagnitudes = ignoredMagnitudes
        self.wrapperCopies = wrapperCopies
    }

    /// Analyses an adapter's tensors against a base manifest's logical tensors (a quantized weight counts
    /// with its original shape).
    public init(
        file: String, tensors: [(key: String, signature: Signature)], config: AdapterConfig, base: Manifest,
        baseModelType: String? = nil
    ) throws {
        let logical = base.logicalTensors
        try self.init(
            file: file, tensors: tensors, config: config,
            baseTensors: Dictionary(logical.map { ($0.name, $0.signature) }, uniquingKeysWith: { first, _ in first }),
            baseOrder: logical.map(\.name), baseModelType: baseModelType)
    }

    /// Model types (`config.json`'s `model_type`) whose attention and MLP projections are transformers'
    /// `Conv1D`, which stores its weight as `[in, out]`: the GPT-2 family.
    static let conv1DModelTypes: Set<String> = ["gpt2", "openai-gpt", "imagegpt", "decision_transformer"]
    /// The names of those `Conv1D` modules; the others (`lm_head`, `score`...) are `Linear`.
    static let conv1DModuleNames: Set<String> = ["c_attn", "c_proj", "c_fc", "q_attn"]

    /// Whether a module's base weight is `[in, out]`. PEFT decides by the module's class, not by the
    /// config: it sets `fan_in_fan_out` for a `Conv1D` and clears it for a `Linear`, and saves whichever
    /// value the last module left. In the GPT-2 family the module's name tells its class; every other
    /// transformers model type uses `Linear` (CLVP, which mixes both, aside); without a model type (no
    /// `config.json`), or for CLVP, the saved flag is the best evidence.
    static func storesInputsFirst(module path: String, baseModelType: String?, config: AdapterConfig) -> Bool {
        guard let baseModelType, !baseModelType.hasPrefix("clvp") else { return config.fanInFanOut }
        return conv1DModelTypes.contains(baseModelType)
            && conv1DModuleNames.contains(String(path.split(separator: ".").last ?? ""))
    }

    /// The module X of a bias PEFT's `modules_to_save` wrapper holds inside (`X.modules_to_save.bias`,
    /// `X.original_module.bias`), else nil.
    static func wrappedModule(of name: String) -> String? {
        for marker in [".modules_to_save.bias", ".original_module.bias"] where name.hasSuffix(marker) {
            return String(name.dropLast(marker.count))
        }
        return nil
    }

    /// Why a base may lack an output layer the adapter names: a model with tied embeddings stores its
    /// `lm_head` as `embed_tokens`, and PEFT would change that shared weight. Empty for other tensors.
    static func tiedHint(_ tensor: String) -> String {
        guard tensor == "lm_head.weight" || tensor.hasSuffix(".lm_head.weight") else { return "" }
        return " (a base with tied embeddings keeps no lm_head of its own: PEFT would change the embeddings it shares, which lorastore does not merge)"
    }

    /// The numbered layers the adapter touches (from `layers.N.` or `h.N.` in module paths), sorted.
    public var layerIndices: [Int] {
        let paths = modules.map(\.path) + replacements.keys.map { $0 }
        var layers = Set<Int>()
        for path in paths {
            let segments = path.split(separator: ".")
            for (index, segment) in segments.enumerated() where index > 0 {
                if let layer = Int(segment), ["layers", "h", "layer", "blocks"].contains(segments[index - 1]) {
                    layers.insert(layer)
                    break
                }
            }
        }
        return layers.sorted()
    }

    /// The module names touched (last path segment: `q_proj`, `lm_head`...), sorted without repeats.
    public var moduleNames: [String] {
        Set(modules.map { String($0.path.split(separator: ".").last ?? "") }
            + replacements.keys.map { String($0.split(separator: ".").dropLast().last ?? "") }).sorted()
    }

    private enum Role { case a, b, embeddingA, embeddingB, magnitude, bias }

    private struct Factors {
        var a: String?
        var b: String?
        var embedding = false
        var magnitude: String?
        var bias: String?

        mutating func set(_ role: Role, key: String) {
            switch role {
            case .a: a = key
            case .b: b = key
            case .embeddingA: a = key; embedding = true
            case .embeddingB: b = key; embedding = true
            case .magnitude: magnitude = key
            case .bias: bias = key
            }
        }
    }

    private static let suffixes: [(String, Role)] = [
        (".lora_A.weight", .a), (".lora_B.weight", .b), (".lora_embedding_A", .embeddingA),
        (".lora_embedding_B", .embeddingB), (".lora_magnitude_vector", .magnitude),
        (".lora_magnitude_vector.weight", .magnitude), (".lora_B.bias", .bias),
    ]

    private static func splitFactorKey(_ name: String) -> (String, Role)? {
        for (suffix, role) in suffixes where name.hasSuffix(suffix) {
            return (String(name.dropLast(suffix.count)), role)
        }
        return nil
    }

    private static func module(
        path: String, parts: Factors, signatures: [String: Signature], matcher: ModuleMatcher, fanInFanOut: Bool,
        baseTensors: [String: Signature], mismatch: (String, String) -> StoreError
    ) throws -> AdapterModule {
        let anyKey = parts.a ?? parts.b ?? parts.magnitude ?? parts.bias ?? path
        guard let keyA = parts.a, let keyB = parts.b, let a = signatures[keyA], let b = signatures[keyB] else {
            throw mismatch(anyKey, "module \"\(path)\" needs both LoRA factors A and B")
        }
        let target = path + ".weight"
        guard let base = baseTensors[target] else {
            let reason = tiedHint(target)
            throw mismatch(keyA, "the base has no tensor \"\(target)\"" + (reason.isEmpty ? " (is this adapter for another base?)" : reason))
        }
        guard a.shape.count >= 2, b.shape.count >= 2 else {
            throw mismatch(keyA, "LoRA factors must be matrices; A is \(a.shape), B is \(b.shape)")
        }
        let rank = a.shape[0]
        guard b.shape[1] == rank else {
            throw mismatch(keyB, "B \(b.shape) does not have A's rank \(rank) as its second dimension")
        }
        let configured: Int
        let scale: Double
        do {
            (configured, scale) = (try matcher.rank(forModule: path), try matcher.scale(forModule: path))
        } catch {
            throw mismatch(keyA, "matching module \"\(path)\" against rank_pattern and alpha_pattern: \(error)")
        }
        guard configured == rank else {
            throw mismatch(keyA, "rank \(rank) differs from the configured rank \(configured) (r / rank_pattern)")
        }
        let kind: AdapterModule.Kind
        let rows: Int
        let columns: Int
        let transposed: Bool
        if parts.embedding {
            guard base.shape.count == 2, a.shape == [rank, base.shape[0]], b.shape == [base.shape[1], rank] else {
                throw mismatch(keyA, "embedding factors A \(a.shape), B \(b.shape) do not fit base \(target) \(base.shape)")
            }
            (kind, rows, columns, transposed) = (.embedding, base.shape[0], base.shape[1], true)
        } else if base.shape.count == 2 {
            let (outFeatures, inFeatures) = fanInFanOut
                ? (base.shape[1], base.shape[0]) : (base.shape[0], base.shape[1])
            guard a.shape == [rank, inFeatures], b.shape == [outFeatures, rank] else {
                let layout = fanInFanOut ? "[in, out] (fan_in_fan_out)" : "[out, in]"
                throw mismatch(
                    keyA,
                    "factors A \(a.shape), B \(b.shape) do not fit base \(target) \(base.shape) stored as \(layout): expected A [\(rank), \(inFeatures)], B [\(outFeatures), \(rank)]")
            }
            (kind, rows, columns, transposed) = (.linear, base.shape[0], base.shape[1], fanInFanOut)
        } else if base.shape.count >= 3 {
            let kernel = Array(base.shape.dropFirst(2))
            guard a.shape == [rank] + base.shape.dropFirst() else {
                throw mismatch(
                    keyA,
                    "convolution factor A \(a.shape) does not fit base \(target) \(base.shape) (grouped convolutions cannot be merged; PEFT refuses them too)")
            }
            guard b.shape == [base.shape[0], rank] + kernel.map({ _ in 1 }) else {
                throw mismatch(keyB, "convolution factor B \(b.shape) must be [\(base.shape[0]), \(rank), 1...]")
            }
            (kind, rows, columns, transposed) = (
                .convolution, base.shape[0], base.shape.dropFirst().reduce(1, *), false
            )
        } else {
            throw mismatch(keyA, "base \(target) \(base.shape) is not a matrix or convolution kernel")
        }
        if let magnitudeKey = parts.magnitude {
            // PEFT's DoRA norms are per output feature: a row of a linear weight or of a convolution kernel
            // flattened to [out, in·kernel], a column of a fan_in_fan_out [in, out] weight or of an embedding
            // (one magnitude per embedding dimension). A convolution's magnitude keeps the kernel's rank.
            let features = transposed ? columns : rows
            let expected = kind == .convolution ? [1, features] + base.shape.dropFirst(2).map { _ in 1 } : [features]
            guard signatures[magnitudeKey]?.shape == expected else {
                throw mismatch(magnitudeKey, "DoRA magnitude must have shape \(expected)")
            }
        }
        if let biasKey = parts.bias {
            let outFeatures = transposed ? columns : rows
            guard baseTensors[path + ".bias"]?.shape == [outFeatures] else {
                throw mismatch(biasKey, "the base has no bias \(path).bias of shape [\(outFeatures)] to add the LoRA bias to")
            }
            guard signatures[biasKey]?.shape == [outFeatures] else {
                throw mismatch(biasKey, "LoRA bias must have shape [\(outFeatures)]")
            }
        }
        return AdapterModule(
            path: path, target: target, kind: kind, rank: rank, scale: scale, keyA: keyA,
            keyB: keyB, magnitudeKey: parts.magnitude, biasKey: parts.bias, transposed: transposed, rows: rows,
            columns: columns)
    }
}
