/// Python's inline flags: `(?aimsux)` at the start, `(?flags-flags:…)` around a group.
extension PatternParser {
    /// `(?aimsux)` at the current `(`: the flags it sets for the whole pattern, or nil (and nothing consumed)
    /// when the group is something else, such as a scoped `(?i:…)`.
    mutating func parseGlobalFlags() throws(PatternError) -> Flags? {
        let start = position
        guard scalars.indices.contains(position + 2), scalars[position + 1] == "?",
              Self.flagLetters.contains(scalars[position + 2]) else { return nil }
        position += 2
        var flags = self.flags
        while let scalar = peek(), Self.flagLetters.contains(scalar) {
            position += 1
            try apply(scalar, to: &flags, on: true)
        }
        guard take(")") else {
            position = start
            return nil
        }
        return flags
    }

    /// `?flags-flags:` after a `(`: the flags inside the group, or nil when this is not a flag group.
    mutating func parseScopedFlags(start: Int) throws(PatternError) -> Flags? {
        var flags = self.flags
        var sawFlag = false
        while let scalar = peek(), Self.flagLetters.contains(scalar) {
            position += 1
            sawFlag = true
            try apply(scalar, to: &flags, on: true)
        }
        if take("-") {
            guard let first = peek(), Self.flagLetters.contains(first) else { throw error("missing flag", at: position) }
            while let scalar = peek(), Self.flagLetters.contains(scalar) {
                position += 1
                guard scalar != "a", scalar != "u", scalar != "L" else {
                    throw error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'", at: position - 1)
                }
                try apply(scalar, to: &flags, on: false)
            }
            sawFlag = true
        }
        guard sawFlag else { return nil }
        guard take(":") else { throw error("missing :", at: position) }
        return flags
    }

    static let flagLetters: Set<Unicode.Scalar> = ["a", "i", "L", "m", "s", "u", "x"]

    func apply(_ letter: Unicode.Scalar, to flags: inout Flags, on: Bool) throws(PatternError) {
        switch letter {
        case "a": flags.ascii = on
        case "i": flags.caseless = on
        case "m": flags.multiline = on
        case "s": flags.dotAll = on
        case "x": flags.verbose = on
        case "u": flags.ascii = false
        default: throw error("bad inline flags: cannot use 'L' flag with a str pattern", at: position - 1)
        }
    }

    /// Skips whitespace and a `#` comment in a verbose pattern; true when anything was skipped.
    mutating func skipVerboseSpace() -> Bool {
        guard let scalar = peek() else { return false }
        if scalar.properties.isWhitespace {
            position += 1
            return true
        }
        guard scalar == "#" else { return false }
        while let skipped = next(), skipped != "\n" {}
        return true
    }
}
