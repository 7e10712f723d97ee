/// Parses a regular expression with the syntax of Python's `re` module (`sre_parse`, Python 3.11 and later),
/// so that a pattern in a PEFT config means here what it means to PEFT, and a pattern Python refuses is
/// refused here too.
///
/// Backreferences, conditional groups, atomic groups and possessive quantifiers are refused as unsupported:
/// they are what makes matching need backtracking, and no PEFT config needs them. So is a repetition with two
/// or more optional iterations of something that can match nothing (`(a|)*`, `(?:x*)*`, `(?:a|b??){0,2}`):
/// Python tries no further iteration after an empty one, which the matcher cannot follow; with none, it
/// finds exactly Python's match. So are `\N{name}`, for want of Unicode's name table, and surrogate
/// escapes; patterns longer than ``longestPattern`` scalars or with groups nested deeper than
/// ``deepestNesting`` are refused as too costly. The inline flags, escapes, sets and quantifiers are in the extensions
/// `PatternParser+Flags` and `PatternParser+Escapes`.
struct PatternParser {
    /// The inline flags in effect.
    struct Flags: Sendable, Hashable {
        var caseless = false
        var multiline = false
        var dotAll = false
        var ascii = false
        var verbose = false

        /// How literals and sets compare case.
        var folding: CaseFolding { caseless ? (ascii ? .ascii : .unicode) : .exact }
    }

    let scalars: [Unicode.Scalar]
    var position = 0
    var flags = Flags()
    private(set) var groupCount = 0
    private(set) var groupNames: [String: Int] = [:]
    /// Groups whose closing parenthesis is still ahead: a reference to one is an error in Python.
    private var openGroups: Set<Int> = []
    /// Groups open around the current position, of any kind.
    private var depth = 0
    /// The letters of every global flag group so far: Python refuses `a` and `u` together across them.
    var globalFlagLetters: Set<Unicode.Scalar> = []

    /// The most groups one may nest: parsing, compiling and releasing a pattern recurse once per level.
    /// (Python refuses a few hundred levels too, for its own recursion limit.)
    static let deepestNesting = 100
    /// The first construct lorastore does not match. Parsing goes on past it, because a pattern Python
    /// refuses must get Python's error, wherever it is.
    private var firstUnsupported: PatternError?

    init(_ pattern: String) {
        scalars = Array(pattern.unicodeScalars)
    }

    /// The longest pattern read, in scalars: far beyond any PEFT config's, and a bound on parsing's work.
    static let longestPattern = 100_000

    /// Parses the whole pattern.
    mutating func parse() throws(PatternError) -> PatternNode {
        guard scalars.count <= Self.longestPattern else {
            throw PatternError(
                kind: .tooCostly, reason: "the pattern is \(scalars.count) characters long, more than lorastore reads",
                position: 0)
        }
        let node = try parseAlternation(topLevel: true)
        if position < scalars.count { throw error("unbalanced parenthesis") }
        if let firstUnsupported { throw firstUnsupported }
        return node
    }

    // MARK: - Structure

    private mutating func parseAlternation(topLevel: Bool = false) throws(PatternError) -> PatternNode {
        var branches = [try parseSequence(topLevel: topLevel)]
        while take("|") { branches.append(try parseSequence(topLevel: false)) }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseSequence(topLevel: Bool) throws(PatternError) -> PatternNode {
        var items: [PatternNode] = []
        // Whether the last item may take a quantifier, and whether it already has one.
        var repeatable = false
        var repeated = false
        while let scalar = peek(), scalar != "|", scalar != ")" {
            if flags.verbose, try skipVerboseSpace() { continue }
            let start = position
            if let quantifier = try parseQuantifier() {
                guard let last = items.popLast(), repeatable else {
                    throw error(repeated ? "multiple repeat" : "nothing to repeat", at: start)
                }
                let possessive = take("+")
                if possessive { noteUnsupported("a possessive quantifier", at: start) }
                if last.canMatchEmpty, quantifier.max.map({ $0 - quantifier.min >= 2 }) ?? true {
                    noteUnsupported("a repetition of something that can match nothing", at: start)
                }
                items.append(.repetition(last, min: quantifier.min, max: quantifier.max, lazy: !possessive && take("?")))
                repeatable = false
                repeated = true
                continue
            }
            if scalar == "(", let flags = try parseGlobalFlags() {
                guard topLevel, items.isEmpty else { throw error("global flags not at the start of the expression", at: start) }
                self.flags = flags
                repeatable = false
                continue
            }
            // A comment group adds nothing: a quantifier after it applies to what came before.
            guard let item = try parseAtom() else { continue }
            repeated = false
            items.append(item)
            // Python repeats any group, but no anchor outside one.
            if case .assertion = item, scalars[start] != "(" { repeatable = false } else { repeatable = true }
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .sequence(items)
        }
    }

    /// One item: nil for a comment group, which adds nothing.
    private mutating func parseAtom() throws(PatternError) -> PatternNode? {
        let start = position
        guard let scalar = next() else { return nil }
        switch scalar {
        case "[": return .set(try parseSet(start: start))
        case ".": return .any(dotAll: flags.dotAll)
        case "^": return .assertion(flags.multiline ? .lineStart : .textStart)
        case "$": return .assertion(flags.multiline ? .lineEnd : .textEndOrFinalNewline)
        case "(": return try parseGroup(start: start)
        case "\\": return try parseEscape(start: start)
        default: return literal(scalar)
        }
    }

    private mutating func parseGroup(start: Int) throws(PatternError) -> PatternNode? {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.deepestNesting else {
            throw PatternError(
                kind: .tooCostly, reason: "groups nest more than \(Self.deepestNesting) deep, more than lorastore reads",
                position: start)
        }
        guard take("?") else { return try parseCapture(start: start, name: nil) }
        let extensionStart = position
        guard let kind = next() else { throw error("unexpected end of pattern", at: extensionStart) }
        switch kind {
        case ":": return try parseGroupBody(start: start)
        case "P":
            if take("=") {
                let name = try parseName(terminator: ")")
                guard let group = groupNames[name] else { throw error("unknown group name '\(name)'", at: extensionStart + 2) }
                try noteBackreference(to: group, at: start)
                return .empty
            }
            guard take("<") else { throw error("unknown extension ?P\(peek().map(String.init) ?? "")", at: extensionStart) }
            let name = try parseName(terminator: ">")
            guard groupNames[name] == nil else { throw error("redefinition of group name '\(name)'", at: start) }
            return try parseCapture(start: start, name: name)
        case "=", "!":
            return .look(try parseGroupBody(start: start), behind: false, negated: kind == "!")
        case "<":
            let direction = next()
            guard direction == "=" || direction == "!" else {
                throw error("unknown extension ?<\(direction.map(String.init) ?? "")", at: extensionStart)
            }
            let body = try parseGroupBody(start: start)
            guard let width = body.fixedWidth else { throw error("look-behind requires fixed-width pattern", at: start) }
            guard width < Self.repeatLimit else { throw error("looks too much behind", at: start) }
            return .look(body, behind: true, negated: direction == "!")
        case "#":
            // Python reads the comment token by token: `\)` does not end it.
            while let token = try nextToken() { if !token.escaped, token.scalar == ")" { return nil } }
            throw error("missing ), unterminated comment", at: start)
        case "(": return try parseConditional(start: start)
        case ">":
            noteUnsupported("an atomic group", at: start)
            return try parseGroupBody(start: start)
        default:
            position = extensionStart
            guard let scoped = try parseScopedFlags(start: start) else {
                throw error("unknown extension ?\(kind)", at: extensionStart)
            }
            let outer = flags
            flags = scoped
            defer { flags = outer }
            return try parseGroupBody(start: start)
        }
    }

    /// A capturing group's body, after its opening.
    private mutating func parseCapture(start: Int, name: String?) throws(PatternError) -> PatternNode {
        groupCount += 1
        let group = groupCount
        if let name { groupNames[name] = group }
        openGroups.insert(group)
        defer { openGroups.remove(group) }
        return .capture(try parseGroupBody(start: start), group: group)
    }

    /// A backreference to an existing `group`: an error while the group is open, as in Python, and
    /// otherwise unsupported.
    mutating func noteBackreference(to group: Int, at start: Int) throws(PatternError) {
        guard !openGroups.contains(group) else { throw error("cannot refer to an open group", at: start) }
        noteUnsupported("a backreference", at: start)
    }

    /// `(?(group)yes|no)` after its `(?(`, checked as Python checks it and noted as unsupported.
    private mutating func parseConditional(start: Int) throws(PatternError) -> PatternNode {
        let nameStart = position
        let name = try parseGroupReference()
        if let group = Int(name) {
            guard group >= 0 else { throw error("bad character in group name '\(name)'", at: nameStart) }
            guard group > 0 else { throw error("bad group number", at: nameStart) }
        } else if groupNames[name] == nil {
            throw error("unknown group name '\(name)'", at: nameStart)
        }
        let body = try parseGroupBody(start: start)
        if case .alternation(let branches) = body, branches.count > 2 {
            throw error("conditional backref with more than two branches", at: start)
        }
        noteUnsupported("a conditional group", at: start)
        return .empty
    }

    /// A conditional group's condition up to its `)`: a group name, or a number.
    private mutating func parseGroupReference() throws(PatternError) -> String {
        let start = position
        var name = ""
        while true {
            guard let scalar = next() else { throw error("missing ), unterminated name", at: start) }
            if scalar == ")" { break }
            name.unicodeScalars.append(scalar)
        }
        guard !name.isEmpty else { throw error("missing group name", at: start) }
        guard Int(name) != nil || Self.isIdentifier(name) else {
            throw error("bad character in group name '\(name)'", at: start)
        }
        return name
    }

    /// The rest of a group after its opening: alternatives up to the closing parenthesis.
    private mutating func parseGroupBody(start: Int) throws(PatternError) -> PatternNode {
        let body = try parseAlternation()
        guard take(")") else { throw error("missing ), unterminated subpattern", at: start) }
        return body
    }

    private mutating func parseName(terminator: Unicode.Scalar) throws(PatternError) -> String {
        let start = position
        var name = ""
        while true {
            guard let scalar = next() else { throw error("missing \(terminator), unterminated name", at: start) }
            if scalar == terminator { break }
            name.unicodeScalars.append(scalar)
        }
        guard !name.isEmpty else { throw error("missing group name", at: start) }
        guard Self.isIdentifier(name) else { throw error("bad character in group name '\(name)'", at: start) }
        return name
    }

    /// Python's `str.isidentifier`.
    private static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isXIDContinue }
    }

    // MARK: - Reading

    func peek() -> Unicode.Scalar? {
        scalars.indices.contains(position) ? scalars[position] : nil
    }

    mutating func next() -> Unicode.Scalar? {
        guard let scalar = peek() else { return nil }
        position += 1
        return scalar
    }

    /// The next token as Python's tokenizer reads it: a scalar, or a backslash and the scalar after it.
    mutating func nextToken() throws(PatternError) -> (scalar: Unicode.Scalar, escaped: Bool)? {
        guard let scalar = next() else { return nil }
        guard scalar == "\\" else { return (scalar, false) }
        guard let escaped = next() else { throw error("bad escape (end of pattern)", at: position - 1) }
        return (escaped, true)
    }

    mutating func take(_ scalar: Unicode.Scalar) -> Bool {
        guard peek() == scalar else { return false }
        position += 1
        return true
    }

    func error(_ reason: String, at offset: Int? = nil) -> PatternError {
        PatternError(kind: .invalid, reason: reason, position: offset ?? position)
    }

    mutating func noteUnsupported(_ construct: String, at offset: Int) {
        if firstUnsupported == nil {
            firstUnsupported = PatternError(kind: .unsupported, reason: construct, position: offset)
        }
    }
}
