/// A match of a ``PythonPattern``, with its groups.
public struct PatternMatch: Sendable {
    let text: [Unicode.Scalar]
    let slots: [Int]
    let groupNames: [String: Int]

    /// The text group `index` matched (0: the whole match), or nil when it took no part in the match.
    public func group(_ index: Int) -> String? {
        guard index >= 0, index < slots.count / 2 else { return nil }
        let (start, end) = (slots[2 * index], slots[2 * index + 1])
        guard start >= 0, end >= start else { return nil }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text[start..<end])
        return String(scalars)
    }

    /// The text the group named `name` (`(?P<name>…)`) matched, or nil.
    public func group(named name: String) -> String? {
        groupNames[name].flatMap(group)
    }
}
