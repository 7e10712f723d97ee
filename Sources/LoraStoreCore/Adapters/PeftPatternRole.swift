/// The ways PEFT 0.21 embeds a config's regular expressions before matching a module path with Python's
/// `re`. lorastore builds the same strings and compiles them as ``PythonPattern``s, so that a pattern's
/// precedence quirks (an unparenthesised `|` in a `modules_to_save` entry, say) act as they do in PEFT.
enum PeftPatternRole: Sendable {
    /// `target_modules` or `exclude_modules` given as a string: `re.fullmatch(pattern, path)`.
    case wholePath
    /// A `modules_to_save` entry: `re.match(rf"(^|.*\.){name}($|\..*)", path)`.
    case savedModule
    /// A `rank_pattern` or `alpha_pattern` key: `re.match(rf"(.*\.)?({key})$", path)`.
    case patternKey
    /// A `layers_pattern` entry: `re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", path)`, whose `idx` group
    /// is the layer index.
    case layerName

    /// The layer index rule without a `layers_pattern`: the first number between dots.
    static let defaultLayerIndex = #".*?\.[^.]*\.(?P<idx>\d+)\."#

    /// What PEFT puts before and after the pattern.
    var affixes: (prefix: String, suffix: String) {
        switch self {
        case .wholePath: return ("", "")
        case .savedModule: return (#"(^|.*\.)"#, #"($|\..*)"#)
        case .patternKey: return (#"(.*\.)?("#, ")$")
        case .layerName: return (#"(?:^|.*?\.)"#, #"\.(?P<idx>\d+)\."#)
        }
    }

    /// `pattern` embedded and compiled as PEFT compiles it.
    func compile(_ pattern: String) throws(PatternError) -> PythonPattern {
        try PythonPattern(affixes.prefix + pattern + affixes.suffix)
    }
}
