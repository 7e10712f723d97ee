/// A reference that cannot be parsed, with the reason.
public struct ReferenceError: Error, Sendable, CustomStringConvertible {
    /// The text as given.
    public let text: String
    /// Why it is not a valid reference.
    public let reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid reference \"\(text)\": \(reason)" }
}
