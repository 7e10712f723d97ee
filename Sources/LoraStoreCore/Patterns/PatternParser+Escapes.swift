/// Quantifiers, escapes and character sets, as `sre_parse` reads them.
extension PatternParser {
    /// `*`, `+`, `?` or a well-formed `{m,n}` at the current position, consumed; nil (and nothing consumed)
    /// otherwise: Python reads a `{` that opens no quantifier as a literal.
    mutating func parseQuantifier() throws(PatternError) -> (min: Int, max: Int?)? {
        let start = position
        switch peek() {
        case "*": position += 1; return (0, nil)
        case "+": position += 1; return (1, nil)
        case "?": position += 1; return (0, 1)
        case "{": position += 1
        default: return nil
        }
        guard peek() != "}" else {
            position = start
            return nil
        }
        let low = digits()
        let high = take(",") ? digits() : low
        guard take("}") else {
            position = start
            return nil
        }
        func count(_ text: String) throws(PatternError) -> Int? {
            guard !text.isEmpty else { return nil }
            guard let value = Int(text), value < Self.repeatLimit else {
                throw error("the repetition number is too large", at: start)
            }
            return value
        }
        let minimum = try count(low) ?? 0
        let maximum = try count(high)
        if let maximum, maximum < minimum { throw error("min repeat greater than max repeat", at: start) }
        return (minimum, maximum)
    }

    /// Python's `MAXREPEAT`: a repetition count must be below it.
    static let repeatLimit = 4_294_967_295

    mutating func digits() -> String {
        var text = ""
        while let scalar = peek(), ("0"..."9").contains(scalar) {
            text.unicodeScalars.append(scalar)
            position += 1
        }
        return text
    }

    mutating func parseEscape(start: Int) throws(PatternError) -> PatternNode {
        guard let scalar = next() else { throw error("bad escape (end of pattern)", at: start) }
        switch scalar {
        case "A": return .assertion(.textStart)
        case "Z": return .assertion(.textEnd)
        case "b": return .assertion(.wordBoundary(ascii: flags.ascii))
        case "B": return .assertion(.notWordBoundary(ascii: flags.ascii))
        case "d", "D", "s", "S", "w", "W":
            return .set(ScalarSet(items: [categoryItem(scalar)], negated: false, folding: .exact))
        case "1"..."9":
            // As Python reads it: three octal digits are a character; otherwise one or two digits name a
            // group, which must exist.
            if scalar <= "7", let octal = try octalTriple(first: scalar, start: start) { return literal(octal) }
            var group = Int(scalar.value - 0x30)
            if let digit = peek(), ("0"..."9").contains(digit) {
                position += 1
                group = group * 10 + Int(digit.value - 0x30)
            }
            guard group <= groupCount else { throw error("invalid group reference \(group)", at: start + 1) }
            try noteBackreference(to: group, at: start)
            return .empty
        default:
            return literal(try escapedScalar(scalar, start: start))
        }
    }

    /// The scalar an escape other than a class or assertion stands for.
    mutating func escapedScalar(_ scalar: Unicode.Scalar, start: Int) throws(PatternError) -> Unicode.Scalar {
        switch scalar {
        case "a": return "\u{07}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        case "x": return try hexadecimal(count: 2, start: start)
        case "u": return try hexadecimal(count: 4, start: start)
        case "U": return try hexadecimal(count: 8, start: start)
        case "N":
            // Python looks the name up in the Unicode database; lorastore has no such table.
            guard take("{") else { throw error("missing {", at: position) }
            while let scalar = next(), scalar != "}" {}
            guard scalars[position - 1] == "}" else { throw error("missing }", at: start) }
            guard position - start > 4 else { throw error("missing character name", at: start) }
            noteUnsupported("a named character escape \\N{…}", at: start)
            return "?"
        case "0"..."7":
            // Outside a set only `\0` gets here; `\1`…`\7` open an octal escape only inside one.
            var value = scalar.value - 0x30
            for _ in 0..<2 {
                guard let digit = peek(), ("0"..."7").contains(digit) else { break }
                position += 1
                value = value * 8 + digit.value - 0x30
            }
            guard value <= 0o377 else { throw error("octal escape value \\\(value) outside of range 0-0o377", at: start) }
            return Unicode.Scalar(UInt8(value))
        default:
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                throw error("bad escape \\\(scalar)", at: start)
            }
            return scalar
        }
    }

    mutating func octalTriple(first: Unicode.Scalar, start: Int) throws(PatternError) -> Unicode.Scalar? {
        guard scalars.indices.contains(position + 1), ("0"..."7").contains(scalars[position]),
              ("0"..."7").contains(scalars[position + 1])
        else { return nil }
        let value = (first.value - 0x30) * 64 + (scalars[position].value - 0x30) * 8 + scalars[position + 1].value - 0x30
        guard value <= 0o377 else {
            throw error("octal escape value \\\(first)\(scalars[position])\(scalars[position + 1]) outside of range 0-0o377", at: start)
        }
        position += 2
        return Unicode.Scalar(UInt8(value))
    }

    mutating func hexadecimal(count: Int, start: Int) throws(PatternError) -> Unicode.Scalar {
        var text = ""
        for _ in 0..<count {
            guard let digit = peek(), digit.properties.isASCIIHexDigit else {
                throw error("incomplete escape \\\(scalars[start + 1])\(text)", at: start)
            }
            text.unicodeScalars.append(digit)
            position += 1
        }
        guard let value = UInt32(text, radix: 16), value <= 0x10FFFF else {
            throw error("bad escape \\\(scalars[start + 1])\(text)", at: start)
        }
        // Python's str may hold a lone surrogate; Swift's strings, and so module paths here, cannot.
        guard let scalar = Unicode.Scalar(value) else {
            noteUnsupported("a surrogate escape", at: start)
            return "?"
        }
        return scalar
    }

    func categoryItem(_ letter: Unicode.Scalar) -> ScalarSet.Item {
        let kind: ScalarCategory.Kind
        switch letter {
        case "d", "D": kind = .digit
        case "s", "S": kind = .space
        default: kind = .word
        }
        return .category(ScalarCategory(kind: kind, ascii: flags.ascii), negated: letter.properties.isUppercase)
    }

    /// The rest of a `[…]` set after its `[`.
    mutating func parseSet(start: Int) throws(PatternError) -> ScalarSet {
        let negated = take("^")
        var items: [ScalarSet.Item] = []
        let first = position
        while true {
            guard let scalar = next() else { throw error("unterminated character set", at: start) }
            if scalar == "]", position - 1 != first { break }
            let low: ScalarSet.Item
            let itemStart = position - 1
            if scalar == "\\" {
                low = try parseSetEscape(start: itemStart)
            } else {
                low = .range(scalar.value...scalar.value)
            }
            guard peek() == "-", scalars.indices.contains(position + 1), scalars[position + 1] != "]" else {
                items.append(low)
                continue
            }
            position += 1
            let highStart = position
            guard let highScalar = next() else { throw error("unterminated character set", at: start) }
            let high = highScalar == "\\" ? try parseSetEscape(start: highStart) : .range(highScalar.value...highScalar.value)
            guard case .range(let lower) = low, case .range(let upper) = high, lower.count == 1, upper.count == 1 else {
                throw error("bad character range", at: itemStart)
            }
            guard lower.lowerBound <= upper.lowerBound else { throw error("bad character range", at: itemStart) }
            items.append(.range(lower.lowerBound...upper.lowerBound))
        }
        return ScalarSet(items: items, negated: negated, folding: flags.folding)
    }

    mutating func parseSetEscape(start: Int) throws(PatternError) -> ScalarSet.Item {
        guard let scalar = next() else { throw error("unterminated character set", at: start) }
        switch scalar {
        case "d", "D", "s", "S", "w", "W": return categoryItem(scalar)
        case "b": return .range(0x08...0x08)
        default:
            // Inside a set every digit escape is octal (`\8` and `\9` are bad escapes), never a group.
            let value = try escapedScalar(scalar, start: start)
            return .range(value.value...value.value)
        }
    }

    func literal(_ scalar: Unicode.Scalar) -> PatternNode {
        .scalar(flags.folding.lower(scalar), folding: flags.folding)
    }
}
