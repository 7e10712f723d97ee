/// Why a regular expression was refused or a match abandoned: Python's `re` module would refuse the pattern
/// too, lorastore does not match that construct (a backreference, for example), or the pattern would cost
/// more than lorastore spends on one (a registry matches patterns from pushed configs).
public struct PatternError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Python refuses the pattern.
        case invalid
        /// Python accepts it; lorastore does not match that construct.
        case unsupported
        /// The pattern compiles to too many instructions, or a match takes too many steps.
        case tooCostly
    }

    public var kind: Kind
    /// What is wrong, for people.
    public var reason: String
    /// The offset in Unicode scalars where the problem was found (0 for a cost).
    public var position: Int

    /// True when Python accepts the pattern but lorastore does not match that construct.
    public var isUnsupported: Bool { kind == .unsupported }

    public var description: String {
        switch kind {
        case .invalid: "\(reason) at position \(position)"
        case .unsupported: "\(reason) (at position \(position)), which lorastore does not match"
        case .tooCostly: reason
        }
    }
}
