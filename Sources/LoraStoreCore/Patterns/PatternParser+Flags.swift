/// Python's inline flags: `(?aimsux)` at the start, `(?flags-flags:…)` around a group.
extension PatternParser {
    /// `(?aimsux)` at the current `(`: the flags it sets for the whole pattern, or nil (and nothing consumed)
    /// when the group is something else, such as a scoped `(?i:…)`.
    mutating func parseGlobalFlags() throws(PatternError) -> Flags? {
        let start = position
        guard scalars.indices.contains(position + 2), scalars[position + 1] == "?",
              Self.flagLetters.contains(scalars[position + 2]) else { return nil }
        position += 2
        let letters = try flagLetters(turningOn: true, besides: [])
        guard take(")") else {
            position = start
            return nil
        }
        globalFlagLetters.formUnion(letters)
        if globalFlagLetters.isSuperset(of: ["a", "u"]) { throw error("ASCII and UNICODE flags are incompatible", at: start) }
        var flags = self.flags
        for letter in letters { apply(letter, to: &flags, on: true) }
        return flags
    }

    /// `?flags-flags:` after a `(`: the flags inside the group, or nil when this is not a flag group.
    mutating func parseScopedFlags(start: Int) throws(PatternError) -> Flags? {
        let on = try flagLetters(turningOn: true, besides: [])
        var off: [Unicode.Scalar] = []
        if take("-") {
            guard let first = peek(), Self.flagLetters.contains(first) else { throw error("missing flag", at: position) }
            off = try flagLetters(turningOn: false, besides: on)
        }
        guard !on.isEmpty || !off.isEmpty else { return nil }
        guard take(":") else { throw error("missing :", at: position) }
        var flags = self.flags
        for letter in on { apply(letter, to: &flags, on: true) }
        for letter in off { apply(letter, to: &flags, on: false) }
        return flags
    }

    static let flagLetters: Set<Unicode.Scalar> = ["a", "i", "L", "m", "s", "u", "x"]

    /// A run of flag letters, refused where `sre_parse` refuses them: `L` in a `str` pattern, `a` with `u`,
    /// turning off `a` or `u`, or turning off a flag the same group turns on (`on`).
    private mutating func flagLetters(turningOn: Bool, besides on: [Unicode.Scalar]) throws(PatternError) -> [Unicode.Scalar] {
        // Each letter is kept once (a repeat changes nothing), so a long run stays cheap to check.
        var letters: [Unicode.Scalar] = []
        while let letter = peek(), Self.flagLetters.contains(letter) {
            position += 1
            if letter == "L" { throw error("bad inline flags: cannot use 'L' flag with a str pattern", at: position - 1) }
            if turningOn {
                if (letter == "a" && letters.contains("u")) || (letter == "u" && letters.contains("a")) {
                    throw error("bad inline flags: flags 'a', 'u' and 'L' are incompatible", at: position - 1)
                }
            } else {
                if letter == "a" || letter == "u" {
                    throw error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'", at: position - 1)
                }
                if on.contains(letter) { throw error("bad inline flags: flag turned on and off", at: position - 1) }
            }
            if !letters.contains(letter) { letters.append(letter) }
        }
        return letters
    }

    private func apply(_ letter: Unicode.Scalar, to flags: inout Flags, on: Bool) {
        switch letter {
        case "a": flags.ascii = on
        case "i": flags.caseless = on
        case "m": flags.multiline = on
        case "s": flags.dotAll = on
        case "x": flags.verbose = on
        default: flags.ascii = false
        }
    }

    /// Skips whitespace and a `#` comment in a verbose pattern; true when anything was skipped. Python skips
    /// ASCII whitespace only.
    mutating func skipVerboseSpace() throws(PatternError) -> Bool {
        guard let scalar = peek() else { return false }
        if [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"].contains(scalar) {
            position += 1
            return true
        }
        guard scalar == "#" else { return false }
        // To the end of the line, token by token as Python reads it: an escaped newline does not end it.
        while let token = try nextToken(), token.escaped || token.scalar != "\n" {}
        return true
    }
}
