extension OrderedJSON {
    /// The value of the first member named `key`, when this is an object.
    subscript(key: String) -> OrderedJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var string: String? {
        if case .string(let value) = self { value } else { nil }
    }

    var double: Double? {
        if case .number(let text) = self { Double(text) } else { nil }
    }

    /// An integral number (written `8` or `8.0`).
    var integer: Int? {
        guard let value = double, value.rounded() == value, abs(value) < 1e15 else { return nil }
        return Int(value)
    }
}
