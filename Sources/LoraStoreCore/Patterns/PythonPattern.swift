/// A regular expression with the syntax and matching rules of Python's `re` module, the rules PEFT matches
/// its config's patterns with (`target_modules`, `exclude_modules`, `rank_pattern`, `layers_pattern`…).
///
/// A pattern Python refuses is refused, naming the problem and its position. Constructs that need real
/// backtracking (backreferences, conditional and atomic groups, possessive quantifiers) are refused as
/// unsupported, and in exchange every match takes time at most linear in the pattern's size times the text's
/// length (look-arounds aside), and never more than a fixed budget of steps: a config pushed to a registry
/// cannot stall it with a pattern such as `(a+)+b`.
///
/// The match found, its extent and its groups, are Python's (groups inside look-arounds are not reported),
/// with two exceptions: case-insensitive matching of the few letters with several case forms (see
/// ``CaseFolding``), and `\d`, `\w` and `\s` on characters added to Unicode after version 14, which
/// Python 3.11 knows nothing of and Swift's tables include.
public struct PythonPattern: Sendable {
    /// The pattern as written.
    public let source: String
    let program: PatternProgram
    let groupNames: [String: Int]

    /// Parses and compiles `source` as Python's `re.compile` would.
    /// - Throws: ``PatternError``: what Python would report, a construct lorastore does not match, or a
    ///   pattern too large to match.
    public init(_ source: String) throws(PatternError) {
        var parser = PatternParser(source)
        let node = try parser.parse()
        self.source = source
        program = try PatternProgram(node, groupCount: parser.groupCount)
        groupNames = parser.groupNames
    }

    /// Whether the whole text matches: Python's `re.fullmatch(pattern, text) is not None`.
    /// - Parameter budget: steps shared with other matches, drawn on besides the match's own budget.
    /// - Throws: ``PatternError/Kind/tooCostly`` when the match would take more than its step budget.
    public func matchesWhole(_ text: String, budget: StepBudget? = nil) throws(PatternError) -> Bool {
        let matcher = PatternMatcher(text: Array(text.unicodeScalars), sharing: budget)
        defer { matcher.finish() }
        return try matcher.match(program, from: 0, endingAt: matcher.text.count) != nil
    }

    /// The match at the start of the text that Python's `re.match(pattern, text)` returns, or nil.
    /// - Parameter budget: steps shared with other matches, drawn on besides the match's own budget.
    /// - Throws: ``PatternError/Kind/tooCostly`` when the match would take more than its step budget.
    public func matchPrefix(_ text: String, budget: StepBudget? = nil) throws(PatternError) -> PatternMatch? {
        let matcher = PatternMatcher(text: Array(text.unicodeScalars), sharing: budget)
        defer { matcher.finish() }
        return try matcher.match(program, from: 0).map { PatternMatch(text: matcher.text, slots: $0, groupNames: groupNames) }
    }
}
