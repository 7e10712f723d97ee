/// A parsed regular expression, before compilation into a ``PatternProgram``.
indirect enum PatternNode: Sendable {
    case empty
    /// One scalar; with `caseless`, any scalar whose lowercase is the same.
    case scalar(Unicode.Scalar, caseless: Bool)
    /// `.`: any scalar, or any but a newline unless `dotAll`.
    case any(dotAll: Bool)
    case set(ScalarSet)
    case sequence([PatternNode])
    /// Alternatives, tried in order.
    case alternation([PatternNode])
    /// `min` to `max` (nil: unbounded) repetitions; a lazy one tries fewer first.
    case repetition(PatternNode, min: Int, max: Int?, lazy: Bool)
    /// A capturing group, numbered from 1 as Python numbers them.
    case capture(PatternNode, group: Int)
    case assertion(PatternAssertion)
    /// `(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`.
    case look(PatternNode, behind: Bool, negated: Bool)

    /// The number of scalars every match consumes, or nil when it varies (Python's look-behind requires one).
    var fixedWidth: Int? {
        switch self {
        case .empty, .assertion, .look: return 0
        case .scalar, .any, .set: return 1
        case .sequence(let items):
            var total = 0
            for item in items {
                guard let width = item.fixedWidth else { return nil }
                total += width
            }
            return total
        case .alternation(let branches):
            let widths = branches.map(\.fixedWidth)
            guard let first = widths.first ?? 0, widths.allSatisfy({ $0 == first }) else { return nil }
            return first
        case .repetition(let body, let min, let max, _):
            guard max == min, let width = body.fixedWidth else { return nil }
            return width * min
        case .capture(let body, _): return body.fixedWidth
        }
    }
}

/// The zero-width assertions of Python's `re`.
enum PatternAssertion: Sendable, Hashable {
    /// `^` without MULTILINE, and `\A`.
    case textStart
    /// `^` with MULTILINE.
    case lineStart
    /// `$` without MULTILINE: the end, or before a newline that ends the text.
    case textEndOrFinalNewline
    /// `$` with MULTILINE.
    case lineEnd
    /// `\Z`.
    case textEnd
    /// `\b` (`ascii`: with ASCII word characters).
    case wordBoundary(ascii: Bool)
    /// `\B`.
    case notWordBoundary(ascii: Bool)
}
