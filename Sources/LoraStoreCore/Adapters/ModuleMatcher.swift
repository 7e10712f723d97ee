/// Which modules an adapter config gives LoRA, and with what rank and alpha, as PEFT 0.21 decides, with the
/// config's patterns compiled once: every module of an adapter is matched against the same compiled
/// patterns rather than compiling each for each module. All of a matcher's matches (and its copies') draw
/// on one ``StepBudget`` of ``adapterStepBudget`` steps.
public struct ModuleMatcher: Sendable {
    /// The config whose rules these are.
    public let config: AdapterConfig
    private let budget = StepBudget(steps: Self.adapterStepBudget)

    /// The matching steps one adapter's modules may take in all: about a second, against a few hundred
    /// steps per module for the patterns PEFT configs hold.
    public static let adapterStepBudget = 200_000_000

    /// The longest module path matched, in scalars: far beyond any real model's, and a bound on what one
    /// match allocates (its text is copied, its visited states are a bitmap of the program's size × the
    /// path's length).
    public static let longestModulePath = 4096
    private let excluded: PythonPattern?
    private let targeted: PythonPattern?
    private let savedModules: [PythonPattern]
    /// The `layers_pattern` rules, or PEFT's default one, each with its `idx` group.
    private let layerRules: [PythonPattern]
    private let rankKeys: [(pattern: PythonPattern, value: Double)]
    private let alphaKeys: [(pattern: PythonPattern, value: Double)]

    /// Compiles the config's patterns in the forms PEFT embeds them in.
    /// - Throws: ``PatternError`` for a pattern that does not compile (``AdapterConfig`` refuses such a
    ///   file as it reads it).
    public init(_ config: AdapterConfig) throws(PatternError) {
        self.config = config
        if case .pattern(let pattern)? = config.excludeModules {
            excluded = try PeftPatternRole.wholePath.compile(pattern)
        } else {
            excluded = nil
        }
        if case .pattern(let pattern) = config.targetModules, !config.targetModules.isAllLinear {
            targeted = try PeftPatternRole.wholePath.compile(pattern)
        } else {
            targeted = nil
        }
        var saved: [PythonPattern] = []
        for name in config.modulesToSave { saved.append(try PeftPatternRole.savedModule.compile(name)) }
        savedModules = saved
        var layers: [PythonPattern] = []
        if let patterns = config.layersPattern, !patterns.isEmpty {
            for pattern in patterns { layers.append(try PeftPatternRole.layerName.compile(pattern)) }
        } else {
            layers = [try PythonPattern(PeftPatternRole.defaultLayerIndex)]
        }
        layerRules = layers
        func compiled(_ entries: [AdapterConfig.PatternEntry]) throws(PatternError) -> [(pattern: PythonPattern, value: Double)] {
            var result: [(pattern: PythonPattern, value: Double)] = []
            for entry in entries { result.append((try PeftPatternRole.patternKey.compile(entry.pattern), entry.value)) }
            return result
        }
        rankKeys = try compiled(config.rankPattern)
        alphaKeys = try compiled(config.alphaPattern)
    }

    /// Whether PEFT puts LoRA on the module at `path`, as PEFT 0.21's `check_target_module_exists` decides:
    /// not named by `exclude_modules`, not a `modules_to_save` module, and named by `target_modules` (one
    /// regular expression the whole path matches; or a list: the path itself, or a path ending in `.` and an
    /// entry, which must then also be in `layers_to_transform` when that is given). The layer index is the
    /// first number after a `layers_pattern` name, or with none, the first number between dots (so an
    /// expert index deeper in the path is not taken for the layer). A file's factors for other modules are
    /// never loaded by PEFT.
    /// - Throws: ``PatternError/Kind/tooCostly`` when a pattern takes more than its step budget on `path`.
    public func targets(module path: String) throws(PatternError) -> Bool {
        try checkLength(path)
        switch config.excludeModules {
        case .pattern?: if let excluded, try excluded.matchesWhole(path, budget: budget) { return false }
        case .names(let names)?: if Self.names(names, include: path) { return false }
        case .unspecified?, nil: break
        }
        for saved in savedModules where try saved.matchPrefix(path, budget: budget) != nil { return false }
        switch config.targetModules {
        // PEFT fills an unsaid field in from the model type (``AdapterLayout`` does so before matching); left
        // unsaid here, as for PEFT's shorthand for every linear layer, the file's factors are what was targeted.
        case .unspecified: return true
        case .pattern: return try targeted?.matchesWhole(path, budget: budget) ?? true
        case .names(let names):
            if names.contains(path) { return true }
            guard names.contains(where: { path.hasSuffix("." + $0) }) else { return false }
            guard let layers = config.layersToTransform, !layers.isEmpty else { return true }
            for rule in layerRules {
                guard let match = try rule.matchPrefix(path, budget: budget) else { continue }
                // Python's int() reads any Unicode decimal digits, as `\d` matches them.
                guard let digits = match.group(named: "idx"), let layer = Self.decimalValue(digits) else { return false }
                return layers.contains(layer)
            }
            return false
        }
    }

    /// The rank PEFT uses for a module (path without `base_model.model.`): the first `rank_pattern` key, in
    /// file order, whose `(.*\.)?(KEY)$` matches the path, else `r`.
    public func rank(forModule path: String) throws(PatternError) -> Int {
        try checkLength(path)
        return try firstMatch(in: rankKeys, module: path).flatMap { Int(exactly: $0) } ?? config.rank
    }

    /// The alpha PEFT uses for a module, by the same rule from `alpha_pattern`.
    public func alpha(forModule path: String) throws(PatternError) -> Double {
        try checkLength(path)
        return try firstMatch(in: alphaKeys, module: path) ?? config.alpha
    }

    /// The LoRA scale for a module: alpha / r, or alpha / √r with rsLoRA.
    public func scale(forModule path: String) throws(PatternError) -> Double {
        let rank = Double(try rank(forModule: path))
        return try alpha(forModule: path) / (config.useRSLoRA ? rank.squareRoot() : rank)
    }

    /// Refuses a module path longer than ``longestModulePath`` as too costly to match.
    private func checkLength(_ path: String) throws(PatternError) {
        let length = path.unicodeScalars.count
        guard length > Self.longestModulePath else { return }
        throw PatternError(
            kind: .tooCostly,
            reason: "the module path is \(length) characters long, more than the \(Self.longestModulePath) lorastore matches "
                + "against a config's patterns",
            position: 0)
    }

    private func firstMatch(
        in keys: [(pattern: PythonPattern, value: Double)], module path: String
    ) throws(PatternError) -> Double? {
        for key in keys where try key.pattern.matchPrefix(path, budget: budget) != nil { return key.value }
        return nil
    }

    /// PEFT's name rule: `path` is one of `names`, or ends with `.` and one of them.
    private static func names(_ names: [String], include path: String) -> Bool {
        names.contains { path == $0 || path.hasSuffix("." + $0) }
    }

    /// The value of decimal digits of any script, as Python's `int()` reads what `\d` matched.
    private static func decimalValue(_ digits: String) -> Int? {
        var value = 0
        for scalar in digits.unicodeScalars {
            guard let digit = scalar.properties.numericValue, digit >= 0, digit < 10, digit == digit.rounded() else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = shifted + Int(digit)
        }
        return value
    }
}
