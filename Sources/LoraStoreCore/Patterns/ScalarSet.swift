/// A character set of Python's `re`: `[…]`, or a class escape such as `\d` outside one.
///
/// Its ranges are kept sorted and merged, so that a membership test is a binary search however many items
/// the set was written with: the matcher tests membership at every step it counts, and a set of tens of
/// thousands of items must not multiply that work.
struct ScalarSet: Sendable, Hashable {
    /// One member of a set, as written.
    enum Item: Sendable, Hashable {
        case range(ClosedRange<UInt32>)
        case category(ScalarCategory, negated: Bool)
    }

    /// A class escape in the set (`\d`, `\W`…), each at most once.
    private struct Category: Sendable, Hashable {
        let category: ScalarCategory
        let negated: Bool
    }

    /// Sorted, disjoint, not adjacent.
    private let ranges: [ClosedRange<UInt32>]
    private let categories: [Category]
    /// `[^…]`.
    let negated: Bool
    /// IGNORECASE: a scalar is in the set when it, its lowercase or its uppercase is.
    let folding: CaseFolding

    init(items: [Item], negated: Bool, folding: CaseFolding) {
        var ranges: [ClosedRange<UInt32>] = []
        var categories: [Category] = []
        for item in items {
            switch item {
            case .range(let range): ranges.append(range)
            case .category(let category, let negated):
                let entry = Category(category: category, negated: negated)
                if !categories.contains(entry) { categories.append(entry) }
            }
        }
        var merged: [ClosedRange<UInt32>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        self.ranges = merged
        self.categories = categories
        self.negated = negated
        self.folding = folding
    }

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar)
        if !found, folding != .exact {
            found = containsExactly(folding.lower(scalar)) || containsExactly(folding.upper(scalar))
        }
        return found != negated
    }

    private func containsExactly(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        // The first range that ends at or after the value.
        var (low, high) = (0, ranges.count)
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound < value { low = middle + 1 } else { high = middle }
        }
        if low < ranges.count, ranges[low].contains(value) { return true }
        return categories.contains { $0.category.contains(scalar) != $0.negated }
    }
}
