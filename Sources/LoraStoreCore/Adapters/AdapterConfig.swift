import Foundation

/// The parts of a PEFT `adapter_config.json` that decide how a LoRA adapter merges, as PEFT reads them.
///
/// Parsed with ``OrderedJSON`` because `rank_pattern` and `alpha_pattern` are matched in file order: the
/// first key whose pattern matches a module wins.
public struct AdapterConfig: Sendable, Hashable, Codable {
    /// `peft_type`; only `LORA` is accepted.
    public var peftType: String
    /// `r`: the default rank.
    public var rank: Int
    /// `lora_alpha`: the default alpha.
    public var alpha: Double
    /// `target_modules`: module names, or one regular expression PEFT matches against whole module paths.
    public var targetModules: TargetModules
    public var useRSLoRA: Bool
    public var useDoRA: Bool
    /// `fan_in_fan_out`: the base stores weights as `[in, out]` (GPT-2's Conv1D).
    public var fanInFanOut: Bool
    public var modulesToSave: [String]
    /// `rank_pattern`, in file order.
    public var rankPattern: [PatternEntry]
    /// `alpha_pattern`, in file order.
    public var alphaPattern: [PatternEntry]
    public var layersToTransform: [Int]?
    /// `layers_pattern`: the names after which `layers_to_transform` reads a layer index (nil: any name).
    public var layersPattern: [String]?
    /// `exclude_modules`: modules never targeted, as names or one regular expression.
    public var excludeModules: TargetModules?
    /// `bias`: `none`, `all` or `lora_only`.
    public var bias: String
    public var taskType: String?
    public var baseModelNameOrPath: String?

    /// `init_lora_weights` values (prefixes) with which PEFT rewrites the base weights as it creates the
    /// adapter (PiSSA, OLoRA, CorDA, LoftQ, LoRA-GA): such an adapter only fits the rewritten base.
    static let baseChangingInitializations = ["pissa", "olora", "corda", "loftq", "lora_ga"]

    /// Config fields of PEFT LoRA features that change what loading or merging the adapter does in ways
    /// lorastore does not reproduce, each with why: an adapter that sets one is refused, naming it.
    static let unmergedFeatures: [(field: String, reason: String)] = [
        ("layer_replication", "PEFT first rebuilds the model's layers as copies of others, which then share weights"),
        ("trainable_token_indices", "PEFT trains single rows of the embeddings beside the LoRA factors"),
        ("use_qalora", "QA-LoRA pools the input features, so its factors do not fit the weight as plain LoRA's do"),
        ("use_bdlora", "block-diagonal LoRA shards its factors across devices"),
        ("kasa_config", "KaSA truncates the base weight and scales the update by its own singular values"),
        ("velora_config", "VeLoRA changes the layer PEFT builds around the factors"),
        ("monteclora_config", "MonteCLoRA samples its factors from learned distributions"),
        ("arrow_config", "Arrow routes between adapters per token"),
    ]

    /// PEFT's `LoraConfig.lora_alpha` default, used when the file leaves it out.
    public static let defaultAlpha = 8.0

    /// `target_modules` as PEFT allows it, and as JSON writes it: a list of names, one pattern, or null.
    public enum TargetModules: Sendable, Hashable, Codable {
        case names([String])
        case pattern(String)
        case unspecified

        /// Whether this is PEFT's shorthand for every linear layer but the output, `all-linear` (in any case,
        /// as PEFT compares it), which PEFT turns into those layers' names as it loads the adapter.
        public var isAllLinear: Bool {
            if case .pattern(let pattern) = self { return pattern.lowercased() == "all-linear" }
            return false
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .unspecified
            } else if let pattern = try? container.decode(String.self) {
                self = .pattern(pattern)
            } else if let names = try? container.decode([String].self) {
                self = .names(names)
            } else {
                self = try Self(earlierEncodingFrom: decoder)
            }
        }

        /// The form lorastore 0.1 registries wrote (`{"names": {"_0": [...]}}`), read so that a client and a
        /// registry of different versions still understand each other's descriptions.
        private init(earlierEncodingFrom decoder: any Decoder) throws {
            enum Case: String, CodingKey { case names, pattern, unspecified }
            enum Value: String, CodingKey { case value = "_0" }
            let cases = try decoder.container(keyedBy: Case.self)
            if cases.contains(.names) {
                self = .names(try cases.nestedContainer(keyedBy: Value.self, forKey: .names).decode([String].self, forKey: .value))
            } else if cases.contains(.pattern) {
                self = .pattern(try cases.nestedContainer(keyedBy: Value.self, forKey: .pattern).decode(String.self, forKey: .value))
            } else if cases.contains(.unspecified) {
                self = .unspecified
            } else {
                throw DecodingError.dataCorrupted(
                    DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "target_modules is neither a list, a string nor null"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .names(let names): try container.encode(names)
            case .pattern(let pattern): try container.encode(pattern)
            case .unspecified: try container.encodeNil()
            }
        }
    }

    /// One `pattern: value` pair of `rank_pattern` or `alpha_pattern`.
    public struct PatternEntry: Sendable, Hashable, Codable {
        public var pattern: String
        public var value: Double
    }

    /// Parses `adapter_config.json`; `file` names it in errors.
    public init(json: Data, file: String) throws {
        func invalid(_ field: String, _ reason: String) -> StoreError {
            .invalidInput(path: file, reason: "field \"\(field)\" \(reason)")
        }
        let document: OrderedJSON
        do {
            document = try json.withUnsafeBytes { try OrderedJSON.parse($0) }
        } catch {
            throw StoreError.invalidInput(path: file, reason: "not valid JSON: \(error)")
        }
        guard case .object(let members) = document else {
            throw StoreError.invalidInput(path: file, reason: "not a JSON object")
        }
        // Python's json module keeps the last of duplicate keys and `document[...]` reads the first: refuse
        // rather than merge with other values than PEFT would.
        if let repeated = Self.repeatedKey(members) { throw invalid(repeated, "appears more than once") }

        peftType = document["peft_type"]?.string ?? "LORA"
        guard peftType == "LORA" else {
            throw invalid("peft_type", "is \"\(peftType)\"; lorastore merges LORA adapters only")
        }
        if case .string(let initialization)? = document["init_lora_weights"],
           Self.baseChangingInitializations.contains(where: { initialization.lowercased().hasPrefix($0) }) {
            throw invalid(
                "init_lora_weights",
                "is \"\(initialization)\": PEFT changes the base weights when it creates such an adapter, so merging "
                    + "it into the original base would count part of the base twice; convert it first with PEFT's "
                    + "save_pretrained(..., path_initial_model_for_weight_conversion=...)")
        }
        if let tokens = document["alora_invocation_tokens"], tokens != .null {
            throw invalid(
                "alora_invocation_tokens",
                "is set: an activated LoRA applies only after its invocation tokens, so it cannot be merged into the weights (PEFT refuses too)")
        }
        for (field, reason) in Self.unmergedFeatures {
            switch document[field] {
            case .null?, nil, .bool(false)?, .array([])?, .object([])?: continue
            default: throw invalid(field, "is set: \(reason); lorastore refuses rather than merge the adapter without it")
            }
        }
        switch document["target_parameters"] {
        case .null?, nil, .array([])?: break
        default:
            throw invalid(
                "target_parameters",
                "is set: PEFT wraps those parameters (its ParamWrapper, for MoE experts among others), which lorastore does not "
                    + "merge; it refuses rather than merge the adapter without them")
        }
        guard let rank = document["r"]?.integer, rank > 0 else { throw invalid("r", "must be a positive integer") }
        self.rank = rank
        switch document["lora_alpha"] {
        case .null?, nil: alpha = Self.defaultAlpha
        case let value?:
            guard let number = value.double else { throw invalid("lora_alpha", "must be a number, not \(value.typeName)") }
            guard number.isFinite else { throw invalid("lora_alpha", "must be a finite number") }
            alpha = number
        }
        targetModules = try Self.modules(document, "target_modules", file: file) ?? .unspecified
        useRSLoRA = try Self.flag(document, "use_rslora", file: file)
        useDoRA = try Self.flag(document, "use_dora", file: file)
        fanInFanOut = try Self.flag(document, "fan_in_fan_out", file: file)
        switch document["modules_to_save"] {
        case .array(let items)?:
            modulesToSave = items.compactMap(\.string)
            guard modulesToSave.count == items.count else { throw invalid("modules_to_save", "must list strings") }
            for name in modulesToSave { try Self.checkPattern(name, as: .savedModule, field: "modules_to_save", file: file) }
        case .null?, nil: modulesToSave = []
        case let other?: throw invalid("modules_to_save", "must be a list, not \(other.typeName)")
        }
        rankPattern = try Self.patterns(document, "rank_pattern", file: file, expected: "a positive integer") {
            $0.integer.map { $0 > 0 } ?? false
        }
        alphaPattern = try Self.patterns(document, "alpha_pattern", file: file, expected: "a finite number") {
            $0.double?.isFinite ?? false
        }
        switch document["layers_to_transform"] {
        case .number?:
            guard let layer = document["layers_to_transform"]?.integer else {
                throw invalid("layers_to_transform", "must be an integer or a list of integers")
            }
            layersToTransform = [layer]
        case .array(let items)?:
            let layers = items.compactMap(\.integer)
            guard layers.count == items.count else { throw invalid("layers_to_transform", "must list integers") }
            layersToTransform = layers
        case .null?, nil: layersToTransform = nil
        case let other?: throw invalid("layers_to_transform", "must be a list of integers, not \(other.typeName)")
        }
        switch document["layers_pattern"] {
        // PEFT reads an empty pattern as none: any name before the layer index.
        case .string(let pattern)?:
            try Self.checkPattern(pattern, as: .layerName, field: "layers_pattern", file: file)
            layersPattern = pattern.isEmpty ? [] : [pattern]
        case .array(let items)?:
            let patterns = items.compactMap(\.string)
            guard patterns.count == items.count else { throw invalid("layers_pattern", "must list strings") }
            for pattern in patterns { try Self.checkPattern(pattern, as: .layerName, field: "layers_pattern", file: file) }
            layersPattern = patterns
        case .null?, nil: layersPattern = nil
        case let other?: throw invalid("layers_pattern", "must be a string or a list, not \(other.typeName)")
        }
        excludeModules = try Self.modules(document, "exclude_modules", file: file)
        bias = document["bias"]?.string ?? "none"
        taskType = document["task_type"]?.string
        baseModelNameOrPath = document["base_model_name_or_path"]?.string
    }

    /// The largest rank of any module: `r`, or a larger one from `rank_pattern` (the rank PEFT compares and
    /// gives a combination of adapters). Which modules are targeted, with what rank and alpha, is
    /// ``ModuleMatcher``'s to say.
    public var largestRank: Int {
        rankPattern.compactMap { Int(exactly: $0.value) }.reduce(rank, max)
    }

    /// Whether the module at `path` is saved whole by `modules_to_save`, as PEFT 0.21's `_set_trainable`
    /// decides: a module whose name ends with an entry is wrapped with everything inside it, so a
    /// classification head `classifier` saves `classifier.dense` and `classifier.out_proj` too.
    public func savesModule(_ path: String) -> Bool {
        var module = Substring(path)
        while true {
            if modulesToSave.contains(where: { module.hasSuffix($0) }) { return true }
            guard let dot = module.lastIndex(of: ".") else { return false }
            module = module[..<dot]
        }
    }

    /// `target_modules` or `exclude_modules`: one regular expression or a list of names; nil when absent.
    private static func modules(_ document: OrderedJSON, _ field: String, file: String) throws -> TargetModules? {
        switch document[field] {
        case .string(let pattern)?:
            try checkPattern(pattern, as: .wholePath, field: field, file: file)
            return .pattern(pattern)
        case .array(let items)?:
            let names = items.compactMap(\.string)
            guard names.count == items.count else {
                throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" must list strings")
            }
            return .names(names)
        case .null?, nil: return nil
        case let other?:
            throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" must be a list or a string, not \(other.typeName)")
        }
    }

    private static func flag(_ document: OrderedJSON, _ field: String, file: String) throws -> Bool {
        switch document[field] {
        case .bool(let value)?: return value
        case .null?, nil: return false
        case let other?:
            throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" must be true or false, not \(other.typeName)")
        }
    }

    /// `rank_pattern` or `alpha_pattern`: keys that are regular expressions, each mapped to a number that
    /// `isValid` accepts (`expected` says what that is, for the error), in file order.
    private static func patterns(
        _ document: OrderedJSON, _ field: String, file: String, expected: String, isValid: (OrderedJSON) -> Bool
    ) throws -> [PatternEntry] {
        switch document[field] {
        case .object(let members)?:
            if let repeated = repeatedKey(members) {
                throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" key \"\(repeated)\" appears more than once")
            }
            return try members.map { member in
                guard let value = member.value.double, isValid(member.value) else {
                    throw StoreError.invalidInput(
                        path: file, reason: "field \"\(field)\" key \"\(member.key)\" must map to \(expected)")
                }
                try checkPattern(member.key, as: .patternKey, field: field, file: file)
                return PatternEntry(pattern: member.key, value: value)
            }
        case .null?, nil: return []
        case let other?:
            throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" must be an object, not \(other.typeName)")
        }
    }

    /// Throws unless `pattern` compiles in the form PEFT embeds it in for `role`. The fields that hold one
    /// are checked as the file is read, so that a pattern Python would refuse, or one lorastore does not
    /// match, is an error naming the field, never a module that quietly matches nothing.
    private static func checkPattern(_ pattern: String, as role: PeftPatternRole, field: String, file: String) throws {
        do {
            _ = try role.compile(pattern)
        } catch {
            // Positions are counted in the composed pattern; give them in the field's own.
            let position = min(max(0, error.position - role.affixes.prefix.unicodeScalars.count), pattern.unicodeScalars.count)
            let problem = error.isUnsupported
                ? "which uses \(error.reason) (at position \(position)); lorastore does not match that, as it matches patterns "
                    + "in linear time, without backtracking"
                : "which Python's re module refuses as PEFT uses it: \(error.reason) at position \(position)"
            throw StoreError.invalidInput(path: file, reason: "field \"\(field)\" holds \"\(pattern)\", \(problem)")
        }
    }

    /// The first key that appears twice among an object's members, if any.
    private static func repeatedKey(_ members: [OrderedJSON.Member]) -> String? {
        var seen: Set<String> = []
        return members.first { !seen.insert($0.key).inserted }?.key
    }
}
