/// A character set of Python's `re`: `[…]`, or a class escape such as `\d` outside one.
struct ScalarSet: Sendable, Hashable {
    /// One member of a set.
    enum Item: Sendable, Hashable {
        case range(ClosedRange<UInt32>)
        case category(ScalarCategory, negated: Bool)
    }

    var items: [Item]
    /// `[^…]`.
    var negated: Bool
    /// IGNORECASE: a scalar is in the set when it, its lowercase or its uppercase is.
    var caseless: Bool

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar)
        if !found, caseless {
            found = containsExactly(scalar.lowercased) || containsExactly(scalar.uppercased)
        }
        return found != negated
    }

    private func containsExactly(_ scalar: Unicode.Scalar) -> Bool {
        items.contains { item in
            switch item {
            case .range(let range): return range.contains(scalar.value)
            case .category(let category, let negated): return category.contains(scalar) != negated
            }
        }
    }
}

/// `\d`, `\w` and `\s`, with Python's meanings for `str` patterns: Unicode classes, or ASCII ones under the
/// ASCII flag.
struct ScalarCategory: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case digit, word, space
    }

    var kind: Kind
    var ascii: Bool

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        if ascii || scalar.isASCII {
            let value = scalar.value
            guard value < 0x80 else { return false }
            switch kind {
            case .digit: return (0x30...0x39).contains(value)
            case .word:
                return (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
                    || value == 0x5F
            case .space:
                // Python's `str.isspace` below 128 adds the four separators 0x1C–0x1F to ASCII whitespace.
                return (0x09...0x0D).contains(value) || value == 0x20 || (!ascii && (0x1C...0x1F).contains(value))
            }
        }
        let properties = scalar.properties
        switch kind {
        case .digit: return properties.generalCategory == .decimalNumber
        case .word:
            switch properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
            default: return properties.numericType != nil
            }
        case .space: return properties.isWhitespace
        }
    }
}

extension Unicode.Scalar {
    /// The scalar's lowercase, when that is one scalar (Python's `str.lower` per character otherwise).
    var lowercased: Unicode.Scalar {
        let mapping = properties.lowercaseMapping.unicodeScalars
        return mapping.count == 1 ? mapping.first ?? self : self
    }

    /// The scalar's uppercase, when that is one scalar.
    var uppercased: Unicode.Scalar {
        let mapping = properties.uppercaseMapping.unicodeScalars
        return mapping.count == 1 ? mapping.first ?? self : self
    }
}
