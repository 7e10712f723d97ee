/// How a caseless (IGNORECASE) pattern compares scalars: not at all, by Unicode's case mappings, or, under
/// the ASCII flag, for ASCII letters only (so that `(?ai)k` does not match the Kelvin sign).
///
/// Python compares lowercases with Unicode's simple case mapping and adds a table of letters with several
/// case forms (`s` and `ſ`, `k` and `K`, `i` and `İ`…); lorastore uses each scalar's case mapping when it is
/// one scalar, so those few letters are the ones where a caseless match can differ from Python's.
enum CaseFolding: Sendable, Hashable {
    case exact
    case unicode
    case ascii

    /// The scalar's lowercase under this folding.
    func lower(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch self {
        case .exact: return scalar
        case .unicode:
            if scalar.isASCII { return Self.ascii.lower(scalar) }
            return Self.single(scalar.properties.lowercaseMapping) ?? scalar
        case .ascii: return ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 0x20) ?? scalar : scalar
        }
    }

    /// The scalar's uppercase under this folding.
    func upper(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch self {
        case .exact: return scalar
        case .unicode:
            if scalar.isASCII { return Self.ascii.upper(scalar) }
            return Self.single(scalar.properties.uppercaseMapping) ?? scalar
        case .ascii: return ("a"..."z").contains(scalar) ? Unicode.Scalar(scalar.value - 0x20) ?? scalar : scalar
        }
    }

    private static func single(_ mapping: String) -> Unicode.Scalar? {
        let scalars = mapping.unicodeScalars
        return scalars.count == 1 ? scalars.first : nil
    }
}
