/// What a merge will do, tensor by tensor, decided before any arithmetic: each output tensor in base order
/// with its type, shape and how it is made. Building the plan loads the adapters' configs and checks every
/// adapter against the base, so a refused merge fails before it writes anything.
public struct MergePlan: Sendable {
    public let base: StoredManifest
    public let adapters: [LoadedAdapter]
    public let options: MergeOptions
    /// The output tensors, in the base's order.
    public let tensors: [PlannedTensor]

    /// Plans merging `adapters` into `base`.
    public init(base: StoredManifest, adapters: [WeightedAdapter], options: MergeOptions, store: Store) throws {
        guard base.kind == .base else {
            throw StoreError.wrongKind(reference: base.digest.description, expected: .base, found: base.kind)
        }
        if let outputType = options.outputType, !outputType.isMergeable {
            throw StoreError.mergeRefused("output dtype \(outputType.rawValue) is not F32, F16 or BF16")
        }
        // The merge computes in F32: a weight beyond its range would only fail at the first pull.
        for adapter in adapters where !Float(adapter.weight).isFinite {
            throw StoreError.mergeRefused(
                "adapter \(adapter.digest.short) has the weight \(adapter.weight), which is not a finite F32 number (the merge computes in F32)")
        }
        let baseModelType = store.modelType(of: base.manifest)
        let loaded = try store.index.database.read { db in
            try adapters.map { selection in
                guard let stored = try store.manifest(selection.digest, in: db) else {
                    throw StoreError.notFound(selection.digest.description)
                }
                let codecs = try store.codecs(of: stored.manifest.blobDigests, in: db)
                return try LoadedAdapter(
                    stored: stored, tag: try store.tags(of: selection.digest, in: db).first, weight: selection.weight,
                    base: base.manifest, baseModelType: baseModelType, store: store, codecs: codecs)
            }
        }
        if options.combine == .peftLinear {
            try Self.checkPeftLinearConfigs(loaded.map(\.config), baseModelType: baseModelType)
        }
        self.base = base
        self.adapters = loaded
        self.options = options
        self.tensors = try Self.plan(base: base.manifest, adapters: loaded, options: options)
    }

    private static func plan(base: Manifest, adapters: [LoadedAdapter], options: MergeOptions) throws -> [PlannedTensor] {
        var terms: [String: [PlannedTensor.Term]] = [:]
        var dora: [String: PlannedTensor.DoRA] = [:]
        var replacements: [String: PlannedTensor.Replacement] = [:]
        var biases: [String: [PlannedTensor.BiasTerm]] = [:]
        let baseDigests = Dictionary(base.tensors.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first })
        for (index, adapter) in adapters.enumerated() where adapter.weight != 0 {
            // A base_layer copy equal to the base changes nothing; a different one replaces the base tensor
            // when PEFT loads the adapter, which lorastore cannot combine with a LoRA delta on that tensor.
            var replaced = adapter.layout.replacements
            for (target, key) in adapter.layout.baseLayerCopies.sorted(by: { $0.key < $1.key })
            where adapter.tensors[key]?.digest != baseDigests[target] {
                if let weight = base.quantization?[target] {
                    // The copy holds the float weights, the base their codes: they never match by digest.
                    throw StoreError.mergeRefused(
                        "adapter \(adapter.digest.short) carries its own \(target) (\(key)), which this base holds quantized "
                            + "(\(weight.scheme.rawValue)); build on the float base, or quantize the base without \(target)")
                }
                if adapter.layout.modules.contains(where: { $0.target == target }) {
                    throw StoreError.mergeRefused(
                        "adapter \(adapter.digest.short) carries its own \(target) (\(key)), different from the base's, under a LoRA "
                            + "update of it (a resized vocabulary?); merging LoRA onto a replaced tensor is not supported")
                }
                replaced[target] = key
            }
            for (target, key) in replaced.sorted(by: { $0.key < $1.key }) {
                if let other = replacements[target] {
                    throw StoreError.mergeRefused(
                        "adapters \(adapters[other.adapter].digest.short) and \(adapter.digest.short) both replace \(target) (modules_to_save)")
                }
                replacements[target] = PlannedTensor.Replacement(adapter: index, key: key, weight: adapter.weight)
            }
            for module in adapter.layout.modules {
                terms[module.target, default: []].append(
                    PlannedTensor.Term(adapter: index, module: module, coefficient: adapter.weight * module.scale))
                if let magnitudeKey = module.magnitudeKey {
                    dora[module.target] = PlannedTensor.DoRA(
                        adapter: index, magnitudeKey: magnitudeKey, transposed: module.transposed)
                }
                if let biasKey = module.biasKey {
                    biases[module.path + ".bias", default: []].append(
                        PlannedTensor.BiasTerm(adapter: index, key: biasKey, coefficient: adapter.weight * module.scale))
                }
            }
        }
        for (target, doraTerm) in dora {
            let adapter = adapters[doraTerm.adapter]
            guard terms[target]?.count == 1, adapter.weight == 1 else {
                throw StoreError.mergeRefused(
                    "\(target) uses DoRA (adapter \(adapter.digest.short)); a DoRA module merges alone and at weight 1")
            }
        }
        for (target, replaced) in replacements.sorted(by: { $0.key < $1.key })
        where terms[target] != nil || biases[target, default: []].contains(where: { $0.adapter != replaced.adapter }) {
            // An adapter's own LoRA bias adds to the bias it carries (PEFT's bias="all"); another's does not.
            throw StoreError.mergeRefused(
                "\(target) is replaced by adapter \(adapters[replaced.adapter].digest.short) (modules_to_save) and changed by LoRA from another")
        }
        if options.combine == .peftLinear {
            let ranks = adapters.map(\.config.largestRank)
            guard Set(ranks).count <= 1 else {
                throw StoreError.mergeRefused("peft-linear needs adapters of equal rank, as PEFT compares them (r: \(ranks))")
            }
            for (target, list) in terms where Set(list.map(\.module.rank)).count > 1 {
                throw StoreError.mergeRefused("peft-linear needs equal ranks; \(target) has ranks \(list.map(\.module.rank))")
            }
            if let (target, list) = biases.min(by: { $0.key < $1.key }) {
                throw StoreError.mergeRefused(
                    "peft-linear combines LoRA weights only; adapter \(adapters[list[0].adapter].digest.short) has a LoRA bias on "
                        + "\(target), which lorastore does not combine the way PEFT's add_weighted_adapter would")
            }
            if let (target, copy) = replacements.filter({ $0.value.key.contains(".base_layer.") }).min(by: { $0.key < $1.key }) {
                throw StoreError.mergeRefused(
                    "peft-linear combines LoRA weights only; adapter \(adapters[copy.adapter].digest.short) carries its own \(target), "
                        + "which lorastore does not combine the way PEFT's add_weighted_adapter would")
            }
            // PEFT's combined adapter wraps each modules_to_save module afresh from the base model, so its merge
            // keeps the base's tensors there.
            replacements.removeAll()
        }
        try check(options, base: base, adapters: adapters)
        let quantization = base.quantization ?? [:]
        let byName = Dictionary(base.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let scaleOwners = Dictionary(
            quantization.compactMap { name, weight in weight.scaleTensor.map { ($0, name) } }, uniquingKeysWith: { first, _ in first })
        let policy = options.quantizedBase
        return try base.tensors.compactMap { entry in
            if let owner = scaleOwners[entry.name] {
                if policy == .dequantize { return nil }
                let action: PlannedTensor.Action = policy == .requantize && terms[owner] != nil
                    ? .requantizedScales(weight: owner) : .passThrough
                return PlannedTensor(name: entry.name, dtype: entry.dtype, shape: entry.shape, base: entry, action: action)
            }
            if let weight = quantization[entry.name] {
                if dora[entry.name] != nil || replacements[entry.name] != nil {
                    throw StoreError.mergeRefused(
                        "\(entry.name) is quantized (\(weight.scheme.rawValue)); DoRA and modules_to_save need its float original")
                }
                let list = terms[entry.name]
                var planned = switch policy {
                case .dequantize:
                    PlannedTensor(
                        name: entry.name, dtype: options.outputType ?? weight.dtype, shape: weight.shape, base: entry,
                        action: .dequantize(list ?? []))
                case .requantize:
                    PlannedTensor(
                        name: entry.name, dtype: entry.dtype, shape: entry.shape, base: entry,
                        action: list.map { .requantize($0) } ?? .passThrough)
                case .separate, nil:
                    PlannedTensor(
                        name: entry.name, dtype: entry.dtype, shape: entry.shape, base: entry,
                        action: list.map { .separate($0) } ?? .passThrough)
                }
                planned.quantized = PlannedTensor.QuantizedSource(
                    weight: weight, scales: weight.scaleTensor.flatMap { byName[$0] })
                return planned
            }
            if policy == .separate {
                // DoRA is not a plain low-rank delta, so it is left to the runtime unmeasured.
                let list = dora[entry.name] == nil ? terms[entry.name] : nil
                let action: PlannedTensor.Action = list.map { .separate($0) } ?? .passThrough
                return PlannedTensor(name: entry.name, dtype: entry.dtype, shape: entry.shape, base: entry, action: action)
            }
            let dtype = entry.dtype.isMergeable ? (options.outputType ?? entry.dtype) : entry.dtype
            let action: PlannedTensor.Action
            if let list = terms[entry.name] {
                action = .lowRank(list, dora: dora[entry.name])
            } else if let list = biases[entry.name] {
                action = .addBias(list, onto: replacements[entry.name])
            } else if let replaced = replacements[entry.name] {
                action = .replace(replaced)
            } else {
                action = .passThrough
            }
            if case .passThrough = action {} else if !entry.dtype.isMergeable {
                throw StoreError.mergeRefused("\(entry.name) is \(entry.dtype.rawValue); lorastore merges into F32, F16 and BF16 tensors only")
            }
            return PlannedTensor(name: entry.name, dtype: dtype, shape: entry.shape, base: entry, action: action)
        }
    }

    /// Refuses options that do not fit the base: a quantized base needs a policy and only it takes one;
    /// `separate` keeps every type and applies adapters at weight 1; a loss limit is a finite share, 0 or
    /// more (a loss can exceed 1: an output further from the exact merge than the base is).
    private static func check(_ options: MergeOptions, base: Manifest, adapters: [LoadedAdapter]) throws {
        if let limit = options.maxAdapterLoss, !(limit >= 0 && limit.isFinite) {
            throw StoreError.mergeRefused("the maximum adapter loss is a share of 0 or more, not \(limit)")
        }
        if let size = options.maxShardSize, size <= 0 {
            throw StoreError.mergeRefused("the maximum shard size is a positive number of bytes, not \(size)")
        }
        guard let scheme = base.quantization?.values.first?.scheme else {
            if let policy = options.quantizedBase {
                throw StoreError.mergeRefused("the base is not quantized; the \(policy.rawValue) policy is for quantized bases")
            }
            return
        }
        guard let policy = options.quantizedBase else {
            throw StoreError.mergeRefused(
                "the base is quantized (\(scheme.rawValue)); choose how to build on it: requantize, dequantize or separate")
        }
        if policy == .separate {
            if options.outputType != nil {
                throw StoreError.mergeRefused("separate keeps the base as stored; it takes no output dtype")
            }
            if let adapter = adapters.first(where: { $0.weight != 1 }) {
                throw StoreError.mergeRefused(
                    "separate writes adapters untouched, at weight 1; adapter \(adapter.digest.short) has weight \(adapter.weight)")
            }
        }
    }
}

extension MergePlan {
    /// The recipe this plan carries out.
    public var recipe: BuildRecipe {
        BuildRecipe(
            base: base.digest, adapters: adapters.map { WeightedAdapter(digest: $0.digest, weight: $0.weight) },
            options: options)
    }

    /// The safetensors layout of the merged model, with the recipe's provenance in every file.
    public func layout(provenance extra: [String: String]) throws -> ModelLayout {
        try ModelLayout(
            tensors: tensors.map { ($0.name, $0.dtype, $0.shape) }, metadata: recipe.provenance(extra),
            maxShardSize: options.maxShardSize)
    }

    /// Logical bytes of the output tensors.
    public var outputBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Refuses adapters whose configs PEFT's `add_weighted_adapter` (linear) would combine otherwise than
    /// module by module: it refuses `target_modules` of mixed kinds (names and a pattern, as PEFT holds them
    /// once loaded: `all-linear` and a model type's default list become names), and its combined adapter
    /// takes `layers_to_transform`, `layers_pattern` and `exclude_modules` from the first adapter alone, so
    /// the others' modules would be filtered by the first's rules.
    static func checkPeftLinearConfigs(_ configs: [AdapterConfig], baseModelType: String?) throws {
        guard let first = configs.first else { return }
        func isPattern(_ targets: AdapterConfig.TargetModules) -> Bool {
            switch targets {
            case .pattern: !targets.isAllLinear
            case .names: false
            case .unspecified: baseModelType.flatMap(PeftDefaultTargets.targetModules(forModelType:)).map(isPattern) ?? false
            }
        }
        if Set(configs.map { isPattern($0.targetModules) }).count > 1 {
            throw StoreError.mergeRefused(
                "peft-linear needs every adapter's target_modules of one kind, names or a pattern, as PEFT's add_weighted_adapter does")
        }
        /// The rules PEFT filters modules by, as it compares them: order of names and an empty pattern list do
        /// not count.
        struct Filters: Equatable {
            var layers: [Int]?
            var layersPatterns: Set<String>?
            var excludedNames: Set<String>?
            var excludedPattern: String?

            init(_ config: AdapterConfig) {
                layers = config.layersToTransform.flatMap { $0.isEmpty ? nil : $0 }
                layersPatterns = config.layersPattern.flatMap { $0.isEmpty ? nil : Set($0) }
                switch config.excludeModules {
                case .names(let names)?: excludedNames = names.isEmpty ? nil : Set(names)
                case .pattern(let pattern)?: excludedPattern = pattern
                case .unspecified?, nil: break
                }
            }
        }
        let firstFilters = Filters(first)
        for (position, config) in configs.enumerated().dropFirst() where Filters(config) != firstFilters {
            throw StoreError.mergeRefused(
                "peft-linear: adapter \(position + 1) has other layers_to_transform, layers_pattern or exclude_modules than the first; "
                    + "PEFT's combined adapter would apply the first adapter's to all of them, which lorastore does not reproduce")
        }
    }
}
