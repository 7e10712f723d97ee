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
