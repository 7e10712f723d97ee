/// A regular expression with the syntax and matching rules of Python's `re` module, the rules PEFT matches
/// its config's patterns with (`target_modules`, `exclude_modules`, `rank_pattern`, `layers_pattern`…).
///
/// A pattern Python refuses is refused, naming the problem and its position. Constructs that need real
/// backtracking (backreferences, conditional and atomic groups, possessive quantifiers) are refused as
/// unsupported, and in exchange every match takes time at most linear in the pattern's size times the text's
/// length (look-arounds aside), and never more than a fixed budget of steps: a config pushed to a registry
/// cannot stall it with a pattern such as `(a+)+b`.
///
/// Whether a text matches, and where the match ends, are always Python's. One difference remains, in what a
/// group reports: a group inside a repetition whose last iteration matched nothing (`(a|)*` on `a`) keeps
/// the last iteration that consumed text, where Python reports the empty one. PEFT reads one group, the layer
/// index of `layers_pattern`, which sits outside any repetition.
public struct PythonPattern: Sendable {
    /// The pattern as written.
    public let source: String
    let program: PatternProgram
    let groupNames: [String: Int]

    public init(_ source: String) throws(PatternError) {
        var parser = PatternParser(source)
        let node = try parser.parse()
        self.source = source
        program = try PatternProgram(node, groupCount: parser.groupCount)
        groupNames = parser.groupNames
    }

    /// Whether the whole text matches: Python's `re.fullmatch(pattern, text) is not None`.
    /// - Throws: ``PatternError/Kind/tooCostly`` when the match would take more than its step budget.
    public func matchesWhole(_ text: String) throws(PatternError) -> Bool {
        let matcher = PatternMatcher(text: Array(text.unicodeScalars))
        return try matcher.match(program, from: 0, endingAt: matcher.text.count) != nil
    }

    /// The match at the start of the text that Python's `re.match(pattern, text)` returns, or nil.
    /// - Throws: ``PatternError/Kind/tooCostly`` when the match would take more than its step budget.
    public func matchPrefix(_ text: String) throws(PatternError) -> PatternMatch? {
        let matcher = PatternMatcher(text: Array(text.unicodeScalars))
        return try matcher.match(program, from: 0).map { PatternMatch(text: matcher.text, slots: $0, groupNames: groupNames) }
    }
}

/// A match of a ``PythonPattern``, with its groups.
public struct PatternMatch: Sendable {
    let text: [Unicode.Scalar]
    let slots: [Int]
    let groupNames: [String: Int]

    /// The text group `index` matched (0: the whole match), or nil when it took no part in the match.
    public func group(_ index: Int) -> String? {
        guard slots.indices.contains(2 * index + 1) else { return nil }
        let (start, end) = (slots[2 * index], slots[2 * index + 1])
        guard start >= 0, end >= start else { return nil }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text[start..<end])
        return String(scalars)
    }

    /// The text the group named `name` (`(?P<name>…)`) matched, or nil.
    public func group(named name: String) -> String? {
        groupNames[name].flatMap(group)
    }
}
