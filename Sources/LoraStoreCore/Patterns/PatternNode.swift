/// A parsed regular expression, before compilation into a ``PatternProgram``.
indirect enum PatternNode: Sendable {
    case empty
    /// One scalar, or with a caseless `folding`, any scalar whose lowercase is this one (stored lowercased).
    case scalar(Unicode.Scalar, folding: CaseFolding)
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
    /// Saturates at `Int.max` rather than overflow.
    var fixedWidth: Int? {
        switch self {
        case .empty, .assertion, .look: return 0
        case .scalar, .any, .set: return 1
        case .sequence(let items):
            var total = 0
            for item in items {
                guard let width = item.fixedWidth else { return nil }
                let (sum, overflow) = total.addingReportingOverflow(width)
                total = overflow ? .max : sum
            }
            return total
        case .alternation(let branches):
            let widths = branches.map(\.fixedWidth)
            guard let first = widths.first ?? 0, widths.allSatisfy({ $0 == first }) else { return nil }
            return first
        case .repetition(let body, let min, let max, _):
            // No copies, or copies of something of no width, have no width (Python: `(?:)*` is (0, 0)).
            if max == 0 { return 0 }
            guard let width = body.fixedWidth else { return nil }
            guard width > 0 else { return 0 }
            guard max == min else { return nil }
            let (product, overflow) = width.multipliedReportingOverflow(by: min)
            return overflow ? .max : product
        case .capture(let body, _): return body.fixedWidth
        }
    }

    /// Whether the node can match without consuming a scalar. A repetition of such a node with two or more
    /// optional iterations is refused (see ``PatternParser``): Python tries no further iteration after one
    /// that matched nothing, which a matcher that explores each state once cannot follow.
    var canMatchEmpty: Bool {
        switch self {
        case .empty, .assertion, .look: return true
        case .scalar, .any, .set: return false
        case .sequence(let items): return items.allSatisfy(\.canMatchEmpty)
        case .alternation(let branches): return branches.contains(where: \.canMatchEmpty)
        case .repetition(let body, let min, _, _): return min == 0 || body.canMatchEmpty
        case .capture(let body, _): return body.canMatchEmpty
        }
    }

    /// Whether the node compiles to no instruction at all (an empty group, no copies, or copies of either).
    var compilesToNothing: Bool {
        switch self {
        case .empty: return true
        case .sequence(let items): return items.allSatisfy(\.compilesToNothing)
        case .repetition(let body, _, let max, _): return max == 0 || body.compilesToNothing
        default: return false
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
