/// A JSON value (safetensors headers, shard indexes, adapter configs), with object members kept in
/// document order and duplicates preserved.
///
/// Foundation's `JSONSerialization` silently keeps one of two duplicate keys, which would let a file hide
/// a tensor; this small strict parser (RFC 8259) hands every member to the validator. Numbers keep their
/// literal text so integers are read exactly.
enum OrderedJSON: Sendable, Equatable {
    /// One `"key": value` member of an object.
    struct Member: Sendable, Equatable {
        var key: String
        var value: OrderedJSON
    }

    case object([Member])
    case array([OrderedJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Where and why a document is not valid JSON.
    struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The byte offset of the problem.
        var offset: Int
        var message: String

        var description: String { "\(message) at byte \(offset)" }
    }

    /// The deepest nesting accepted, so hostile input cannot exhaust the stack.
    static let maximumDepth = 128

    /// Parses one JSON document (surrounding whitespace allowed, nothing else).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(SyntaxError) -> OrderedJSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    /// The value of a number that is written as a non-negative integer (no sign, fraction or exponent)
    /// and fits in an `Int`; `nil` for anything else.
    var nonNegativeInteger: Int? {
        guard case .number(let text) = self, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return Int(text)
    }

    /// A short name of the value's type, for error messages.
    var typeName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number(let text): "the number \(text)"
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}

// MARK: - Parsing

extension OrderedJSON {
    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        func error(_ message: String) -> SyntaxError {
            SyntaxError(offset: index, message: message)
        }

        var current: UInt8? {
            index < bytes.count ? bytes[index] : nil
        }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                index += 1
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard current == byte else { return false }
            index += 1
            return true
        }

        mutating func parseValue(depth: Int) throws(SyntaxError) -> OrderedJSON {
            skipWhitespace()
            guard let byte = current else { throw error("unexpected end of JSON") }
            switch byte {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try parseLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw error("unexpected character '\(UnicodeScalar(byte))'")
            }
        }

        mutating func parseObject(depth: Int) throws(SyntaxError) -> OrderedJSON {
            guard depth <= OrderedJSON.maximumDepth else { throw error("JSON nested too deeply") }
            index += 1  // {
            var members: [Member] = []
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { throw error("expected ':'") }
                members.append(Member(key: key, value: try parseValue(depth: depth)))
                skipWhitespace()
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { throw error("expected ',' or '}'") }
            return .object(members)
        }

        mutating func parseArray(depth: Int) throws(SyntaxError) -> OrderedJSON {
            guard depth <= OrderedJSON.maximumDepth else { throw error("JSON nested too deeply") }
            index += 1  // [
            var elements: [OrderedJSON] = []
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            repeat {
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "]")) else { throw error("expected ',' or ']'") }
            return .array(elements)
        }

        mutating func parseLiteral(_ literal: StaticString) throws(SyntaxError) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count,
                  UnsafeRawBufferPointer(start: literal.utf8Start, count: count)
                      .elementsEqual(bytes[index ..< index + count])
            else { throw error("invalid literal") }
            index += count
        }

        mutating func parseNumber() throws(SyntaxError) -> String {
            let start = index
            _ = consume(UInt8(ascii: "-"))
            if !consume(UInt8(ascii: "0")) {
                guard skipDigits() else { throw error("invalid number") }
            }
            if consume(UInt8(ascii: ".")) {
                guard skipDigits() else { throw error("invalid number") }
            }
            if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
                _ = consume(UInt8(ascii: "+")) || consume(UInt8(ascii: "-"))
                guard skipDigits() else { throw error("invalid number") }
            }
            return String(decoding: bytes[start ..< index], as: UTF8.self)
        }

        /// Skips a run of digits; returns whether there was at least one.
        mutating func skipDigits() -> Bool {
            let start = index
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                index += 1
            }
            return index > start
        }

        mutating func parseString() throws(SyntaxError) -> String {
            let start = index
            index += 1  // opening quote
            var utf8: [UInt8] = []
            var runStart = index
            while true {
                guard let byte = current else {
                    index = start
                    throw error("unterminated string")
                }
                switch byte {
                case UInt8(ascii: "\""):
                    utf8.append(contentsOf: bytes[runStart ..< index])
                    index += 1
                    guard let string = String(validating: utf8, as: UTF8.self) else {
                        index = start
                        throw error("string is not valid UTF-8")
                    }
                    return string
                case UInt8(ascii: "\\"):
                    utf8.append(contentsOf: bytes[runStart ..< index])
                    index += 1
                    try parseEscape(into: &utf8)
                    runStart = index
                case ..<0x20:
                    throw error("control character in string")
                default:
                    index += 1
                }
            }
        }

        /// Parses the escape after a backslash and appends its UTF-8 encoding.
        mutating func parseEscape(into utf8: inout [UInt8]) throws(SyntaxError) {
            guard let byte = current else { throw error("unterminated escape") }
            index += 1
            let simple: UInt8? = switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): byte
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "t"): 0x09
            default: nil
            }
            if let simple {
                utf8.append(simple)
                return
            }
            guard byte == UInt8(ascii: "u") else { throw error("invalid escape") }
            var value = try parseHex4()
            if (0xD800 ..< 0xDC00).contains(value) {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                    throw error("unpaired surrogate in \\u escape")
                }
                let low = try parseHex4()
                guard (0xDC00 ..< 0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(value) else { throw error("unpaired surrogate in \\u escape") }
            UTF8.encode(scalar) { utf8.append($0) }
        }

        mutating func parseHex4() throws(SyntaxError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0 ..< 4 {
                guard let byte = current, let digit = Self.hexValue(byte) else { throw error("invalid \\u escape") }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        static func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }
    }
}

// MARK: - Writing

extension OrderedJSON {
    /// Appends `string` as a quoted JSON string.
    ///
    /// With `asciiOnly` false the output matches serde_json (what the safetensors library writes): only
    /// `"`, `\` and control characters are escaped. With `asciiOnly` true it matches Python's `json.dumps`
    /// default: everything outside printable ASCII is escaped as `\uXXXX` (surrogate pairs above U+FFFF).
    static func appendQuoted(_ string: String, asciiOnly: Bool, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output.append(contentsOf: #"\""#.utf8)
            case "\\": output.append(contentsOf: #"\\"#.utf8)
            case "\u{08}": output.append(contentsOf: #"\b"#.utf8)
            case "\u{0C}": output.append(contentsOf: #"\f"#.utf8)
            case "\n": output.append(contentsOf: #"\n"#.utf8)
            case "\r": output.append(contentsOf: #"\r"#.utf8)
            case "\t": output.append(contentsOf: #"\t"#.utf8)
            case " " ... "~": output.append(UInt8(scalar.value))
            case _ where scalar.value < 0x20 || asciiOnly:
                for unit in String(scalar).utf16 {
                    output.append(contentsOf: #"\u"#.utf8)
                    let hex = String(unit, radix: 16)
                    output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: 4 - hex.utf8.count))
                    output.append(contentsOf: hex.utf8)
                }
            default: UTF8.encode(scalar) { output.append($0) }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
