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
    var folding: CaseFolding

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar)
        if !found, folding != .exact {
            found = containsExactly(folding.lower(scalar)) || containsExactly(folding.upper(scalar))
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
