import Foundation

extension OrderedJSON {
    /// The document as Python's `json.dumps(value, indent=2, sort_keys=True)` writes it (what
    /// `transformers` and PEFT save): two-space indent, `", "`-free item separators, `": "` after keys,
    /// keys sorted by code point, empty containers as `{}` and `[]`, non-ASCII escaped.
    func pythonIndented() -> [UInt8] {
        var output: [UInt8] = []
        appendPython(to: &output, indent: 0)
        return output
    }

    private func appendPython(to output: inout [UInt8], indent: Int) {
        func newline(_ level: Int) {
            output.append(UInt8(ascii: "\n"))
            output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: level * 2))
        }
        switch self {
        case .object(let members) where members.isEmpty:
            output.append(contentsOf: "{}".utf8)
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            let sorted = members.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                OrderedJSON.appendQuoted(member.key, asciiOnly: true, to: &output)
                output.append(contentsOf: ": ".utf8)
                member.value.appendPython(to: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(UInt8(ascii: "}"))
        case .array(let items) where items.isEmpty:
            output.append(contentsOf: "[]".utf8)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                item.appendPython(to: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(UInt8(ascii: "]"))
        case .string(let text):
            OrderedJSON.appendQuoted(text, asciiOnly: true, to: &output)
        case .number(let text):
            output.append(contentsOf: text.utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .null:
            output.append(contentsOf: "null".utf8)
        }
    }

    /// A Python `float` as `repr` writes it (`0.02`, `1e-05`, `10000.0`), for finite values.
    static func pythonFloat(_ value: Double) -> OrderedJSON {
        .number(value.description)
    }

    /// A Python `int`.
    static func pythonInt(_ value: Int) -> OrderedJSON {
        .number(String(value))
    }
}
