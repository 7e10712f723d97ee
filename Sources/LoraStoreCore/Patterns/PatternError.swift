/// Why a regular expression was refused: Python's `re` module would refuse it too, or lorastore does not
/// match that construct (a backreference, for example), so that no pattern is ever matched other than as
/// PEFT matches it.
public struct PatternError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, for people.
    public var reason: String
    /// The offset in Unicode scalars where the problem was found.
    public var position: Int
    /// True when Python accepts the pattern but lorastore does not match that construct.
    public var isUnsupported: Bool

    public var description: String {
        isUnsupported ? "\(reason) (at position \(position)), which lorastore does not match" : "\(reason) at position \(position)"
    }
}
