@testable import LoraStoreCore
import Testing

@Suite("Header JSON parser")
struct OrderedJSONTests {
    private func parse(_ text: String) throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(OrderedJSON.SyntaxError) in try OrderedJSON.parse(UnsafeRawBufferPointer(buffer)) }
        }.get()
    }

    @Test func parsesEveryKindOfValueKeepingMemberOrderAndDuplicates() throws {
        let value = try parse(#" {"b": [1, -2.5e+3, true, false, null], "a": {}, "b": "x"} "#)
        #expect(value == .object([
            .init(key: "b", value: .array([.number("1"), .number("-2.5e+3"), .bool(true), .bool(false), .null])),
            .init(key: "a", value: .object([])),
            .init(key: "b", value: .string("x")),
        ]))
    }

    @Test func decodesAllEscapes() throws {
        let value = try parse(#"["\"\\\/\b\f\n\r\t", "\u0041\u00e9\u4e2d", "\ud83d\ude00", "plain é 😀"]"#)
        #expect(value == .array([
            .string("\"\\/\u{08}\u{0C}\n\r\t"), .string("Aé中"), .string("😀"), .string("plain é 😀"),
        ]))
    }

    @Test("Rejects invalid documents", arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "{a:1}", "01", "1.", "-", "+1", ".5", "1e", "tru", "nul",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"a\u{01}b\"",
        "[1] [2]", "'a'",
    ])
    func rejects(_ text: String) {
        #expect(throws: OrderedJSON.SyntaxError.self) { try parse(text) }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: OrderedJSON.maximumDepth) + String(repeating: "]", count: OrderedJSON.maximumDepth)
        _ = try parse(deep)
        #expect(throws: OrderedJSON.SyntaxError.self) { try parse("[" + deep + "]") }
        #expect(throws: OrderedJSON.SyntaxError.self) { try parse(String(repeating: "[", count: 1_000_000)) }
    }

    @Test func readsNonNegativeIntegersOnly() {
        #expect(OrderedJSON.number("0").nonNegativeInteger == 0)
        #expect(OrderedJSON.number("9223372036854775807").nonNegativeInteger == Int.max)
        #expect(OrderedJSON.number("9223372036854775808").nonNegativeInteger == nil)
        #expect(OrderedJSON.number("-0").nonNegativeInteger == nil)
        #expect(OrderedJSON.number("1.0").nonNegativeInteger == nil)
        #expect(OrderedJSON.number("1e3").nonNegativeInteger == nil)
        #expect(OrderedJSON.string("1").nonNegativeInteger == nil)
    }

    @Test func quotesLikeSerdeJSONAndPython() {
        let text = "a\"\\/\u{08}\u{0C}\n\r\t\u{01}\u{7F}é😀"
        var serde: [UInt8] = []
        OrderedJSON.appendQuoted(text, asciiOnly: false, to: &serde)
        #expect(String(decoding: serde, as: UTF8.self) == #""a\"\\/\b\f\n\r\t\u0001"# + "\u{7F}é😀\"")
        var python: [UInt8] = []
        OrderedJSON.appendQuoted(text, asciiOnly: true, to: &python)
        #expect(String(decoding: python, as: UTF8.self) == #""a\"\\/\b\f\n\r\t\u0001\u007f\u00e9\ud83d\ude00""#)
    }

    @Test func quotedStringsParseBack() throws {
        let text = "a\"\\/\u{08}\u{0C}\n\r\t\u{01}\u{7F}é😀"
        for asciiOnly in [false, true] {
            var quoted: [UInt8] = []
            OrderedJSON.appendQuoted(text, asciiOnly: asciiOnly, to: &quoted)
            #expect(try parse(String(decoding: quoted, as: UTF8.self)) == .string(text))
        }
    }
}
