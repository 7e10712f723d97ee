import Foundation
import LoraStoreCore
import Testing

/// One malformed file and the error it must raise.
struct MalformedFile: Sendable, CustomTestStringConvertible {
    let title: String
    let bytes: [UInt8]
    let kind: SafetensorsError.Kind
    let tensor: String?

    init(_ title: String, _ bytes: [UInt8], _ kind: SafetensorsError.Kind, tensor: String? = nil) {
        self.title = title
        self.bytes = bytes
        self.kind = kind
        self.tensor = tensor
    }

    init(_ title: String, header: String, dataCount: Int, _ kind: SafetensorsError.Kind, tensor: String? = nil) {
        self.init(title, RawSafetensors.bytes(header: header, dataCount: dataCount), kind, tensor: tensor)
    }

    var testDescription: String { title }

    static let all: [MalformedFile] = {
        let e = RawSafetensors.entry
        return [
            MalformedFile("empty file", [], .fileTooShort),
            MalformedFile("7 bytes", [2, 0, 0, 0, 0, 0, 0], .fileTooShort),
            MalformedFile("header over 100 MB", RawSafetensors.bytes(declaredLength: 100_000_001, rest: Array("{}".utf8)), .headerTooLarge),
            MalformedFile("header length near UInt64.max", RawSafetensors.bytes(declaredLength: .max, rest: []), .headerTooLarge),
            MalformedFile("header past end of file", RawSafetensors.bytes(declaredLength: 100, rest: Array("{}".utf8)), .headerPastEndOfFile),
            MalformedFile("invalid UTF-8", RawSafetensors.bytes(header: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], dataCount: 0), .invalidUTF8),
            MalformedFile("truncated JSON", header: #"{"w":"#, dataCount: 0, .invalidJSON),
            MalformedFile("trailing garbage after JSON", header: "{} x", dataCount: 0, .invalidJSON),
            MalformedFile("duplicate metadata key", header: #"{"__metadata__":{"a":"1","a":"2"}}"#, dataCount: 0, .invalidJSON),
            MalformedFile("empty header", header: "", dataCount: 0, .headerNotAnObject),
            MalformedFile("array header", header: "[1, 2]", dataCount: 0, .headerNotAnObject),
            MalformedFile("leading whitespace", header: " {}", dataCount: 0, .headerNotAnObject),
            MalformedFile("unknown dtype", header: "{\(e("w", "F31", [1], 0, 4))}", dataCount: 4, .unknownDType, tensor: "w"),
            MalformedFile("negative dimension", header: "{\(e("w", "F32", [-1], 0, 4))}", dataCount: 4, .invalidShape, tensor: "w"),
            MalformedFile("fractional dimension", header: "{\(e("w", "F32", [1], 0, 4))}".replacingOccurrences(of: "[1]", with: "[1.0]"), dataCount: 4, .invalidShape, tensor: "w"),
            MalformedFile("shape not an array", header: #"{"w":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}"#, dataCount: 4, .invalidShape, tensor: "w"),
            MalformedFile("one offset", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, dataCount: 4, .invalidOffsets, tensor: "w"),
            MalformedFile("three offsets", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, dataCount: 4, .invalidOffsets, tensor: "w"),
            MalformedFile("negative offset", header: "{\(e("w", "F32", [1], -4, 0))}", dataCount: 4, .invalidOffsets, tensor: "w"),
            MalformedFile("offset beyond Int", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551620]}}"#, dataCount: 4, .invalidOffsets, tensor: "w"),
            MalformedFile("end before begin", header: "{\(e("w", "F32", [1], 8, 4))}", dataCount: 8, .invalidOffsets, tensor: "w"),
            MalformedFile("offsets past end of data", header: "{\(e("w", "F32", [2], 0, 8))}", dataCount: 6, .invalidOffsets, tensor: "w"),
            MalformedFile("first tensor not at 0", header: "{\(e("w", "F32", [1], 4, 8))}", dataCount: 8, .nonContiguousOffsets, tensor: "w"),
            MalformedFile("gap between tensors", header: "{\(e("a", "F32", [1], 0, 4)),\(e("b", "F32", [1], 8, 12))}", dataCount: 12, .nonContiguousOffsets, tensor: "b"),
            MalformedFile("overlapping tensors", header: "{\(e("a", "F32", [2], 0, 8)),\(e("b", "F32", [1], 4, 8))}", dataCount: 8, .nonContiguousOffsets, tensor: "b"),
            MalformedFile("same range twice", header: "{\(e("a", "F32", [1], 0, 4)),\(e("b", "F32", [1], 0, 4))}", dataCount: 4, .nonContiguousOffsets, tensor: "b"),
            MalformedFile("size does not match shape", header: "{\(e("w", "F32", [8, 4], 0, 100))}", dataCount: 100, .sizeMismatch, tensor: "w"),
            MalformedFile("F4 not filling whole bytes", header: "{\(e("w", "F4", [3], 0, 2))}", dataCount: 2, .sizeMismatch, tensor: "w"),
            MalformedFile("element count overflows", header: "{\(e("w", "F32", [1 << 32, 1 << 32], 0, 0))}", dataCount: 0, .sizeOverflow, tensor: "w"),
            MalformedFile("byte size overflows", header: "{\(e("w", "F32", [1 << 62], 0, 0))}", dataCount: 0, .sizeOverflow, tensor: "w"),
            MalformedFile("bytes after the last tensor", header: "{\(e("w", "F32", [1], 0, 4))}", dataCount: 8, .trailingBytes),
            MalformedFile("data without tensors", header: "{}", dataCount: 1, .trailingBytes),
            MalformedFile("duplicate tensor name", header: "{\(e("w", "F32", [1], 0, 4)),\(e("w", "F32", [1], 4, 8))}", dataCount: 8, .duplicateTensorName, tensor: "w"),
            MalformedFile("metadata value not a string", header: #"{"__metadata__":{"format":"pt","step":1}}"#, dataCount: 0, .metadataNotString),
            MalformedFile("metadata not an object", header: #"{"__metadata__":["pt"]}"#, dataCount: 0, .metadataNotString),
            MalformedFile("entry not an object", header: #"{"w":[1]}"#, dataCount: 0, .invalidTensorEntry, tensor: "w"),
            MalformedFile("entry lacks data_offsets", header: #"{"w":{"dtype":"F32","shape":[1]}}"#, dataCount: 4, .invalidTensorEntry, tensor: "w"),
            MalformedFile("entry repeats a field", header: #"{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, dataCount: 4, .invalidTensorEntry, tensor: "w"),
            MalformedFile("dtype not a string", header: #"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, dataCount: 4, .invalidTensorEntry, tensor: "w"),
        ]
    }()
}

@Suite("Safetensors validation")
struct SafetensorsValidationTests {
    @Test("Every rule is enforced with its own error kind", arguments: MalformedFile.all)
    func rejectsMalformedFile(_ file: MalformedFile) throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("model.safetensors")
            try Data(file.bytes).write(to: url)
            let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: url) }
            #expect(error?.kind == file.kind)
            #expect(error?.file == url.path)
            #expect(error?.tensor == file.tensor)
            let message = error?.description ?? ""
            #expect(message.hasPrefix(url.path + ": "))
            if let tensor = file.tensor {
                #expect(message.contains("tensor \"\(tensor)\""))
            }
        }
    }

    @Test("In-memory validation reports the caller's label", arguments: MalformedFile.all)
    func rejectsMalformedBytes(_ file: MalformedFile) {
        let error = #expect(throws: SafetensorsError.self) {
            try file.bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "upload #7") }
        }
        #expect(error?.kind == file.kind)
        #expect(error?.description.hasPrefix("upload #7: ") == true)
    }

    @Test func sizeMismatchMessageIsReadable() {
        let bytes = RawSafetensors.bytes(header: "{\(RawSafetensors.entry("model.layers.0.q_proj.weight", "F32", [8, 4], 0, 100))}", dataCount: 100)
        let error = #expect(throws: SafetensorsError.self) {
            try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "model.safetensors") }
        }
        #expect(error?.description == #"model.safetensors: tensor "model.layers.0.q_proj.weight": byte size 100 does not match shape [8, 4] of F32 (128 bytes)"#)
    }

    @Test func acceptsSpacePaddingEmptyTensorsScalarsAndUnknownFields() throws {
        let e = RawSafetensors.entry
        let header = #"{"__metadata__":{"k":"v"},"# + [
            e("scalar", "F32", [], 0, 4),
            e("empty1", "BF16", [0, 8], 4, 4),
            e("empty2", "I64", [3, 0], 4, 4),
            e("bits", "F4", [4], 4, 6),
            #""w":{"data_offsets":[6,8],"shape":[1],"dtype":"F16","extra":{"x":[null,true]}}"#,
        ].joined(separator: ",") + "}     "
        let bytes = RawSafetensors.bytes(header: header, dataCount: 8)
        let parsed = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "t") }
        #expect(parsed.dataOffset == 8 + header.utf8.count)
        #expect(parsed.metadata == ["k": "v"])
        #expect(parsed.tensors.map(\.name) == ["scalar", "empty1", "empty2", "bits", "w"])
        #expect(parsed.tensors.map(\.elementCount) == [1, 0, 0, 4, 1])
        #expect(parsed.tensors.map(\.byteCount) == [4, 0, 0, 2, 2])
    }

    @Test func acceptsNullMetadataAndNoTensors() throws {
        let bytes = RawSafetensors.bytes(header: #"{"__metadata__":null}"#, dataCount: 0)
        let parsed = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "t") }
        #expect(parsed.metadata == nil)
        #expect(parsed.tensors.isEmpty)
    }

    @Test func decodesEscapedTensorNames() throws {
        let header = "{" + RawSafetensors.entry(#"caf\u00e9.\ud83d\ude00\n\"q\""#, "U8", [1], 0, 1) + "}"
        let bytes = RawSafetensors.bytes(header: header, dataCount: 1)
        let parsed = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "t") }
        #expect(parsed.tensors.map(\.name) == ["café.😀\n\"q\""])
    }

    @Test func ordersTensorsByDataOffsetNotHeaderOrder() throws {
        let e = RawSafetensors.entry
        let header = "{\(e("b", "U8", [2], 1, 3)),\(e("a", "U8", [1], 0, 1))}"
        let bytes = RawSafetensors.bytes(header: header, dataCount: 3)
        let parsed = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "t") }
        #expect(parsed.tensors.map(\.name) == ["a", "b"])
    }
}
