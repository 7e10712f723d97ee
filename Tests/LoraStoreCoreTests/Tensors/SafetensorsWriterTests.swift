import Foundation
import LoraStoreCore
import Testing

@Suite("Safetensors writing")
struct SafetensorsWriterTests {
    @Test func roundTripsSeveralTypesEmptyTensorsAndScalars() throws {
        let f32: [Float] = [1, -2.5, .pi, 0, .infinity, -0.0]
        let bf16: [UInt16] = [0x3F80, 0xC020, 0x7F80, 0x0000]  // 1, -2.5, +inf, 0
        let f16: [UInt16] = [0x3C00]
        let i64: [Int64] = [.min, -1, 0, .max]
        let u8: [UInt8] = [1, 2, 3]
        let f4: [UInt8] = [0x21]  // two F4 elements
        let empty: [UInt8] = []
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("round-trip.safetensors")
            let metadata = ["format": "pt", "note": "ünïcode \"quoted\"\n"]
            try f32.withUnsafeBytes { f32 in
                try bf16.withUnsafeBytes { bf16 in
                    try f16.withUnsafeBytes { f16 in
                        try i64.withUnsafeBytes { i64 in
                            try u8.withUnsafeBytes { u8 in
                                try f4.withUnsafeBytes { f4 in
                                    try empty.withUnsafeBytes { empty in
                                        _ = try SafetensorsWriter.write(to: url, tensors: [
                                            ("w.f32", .f32, [2, 3], f32),
                                            ("w.bf16", .bf16, [4], bf16),
                                            ("empty.bf16", .bf16, [0, 16], empty),
                                            ("scalar.f16", .f16, [], f16),
                                            ("w.i64", .i64, [2, 2], i64),
                                            ("empty.f32", .f32, [3, 0, 2], empty),
                                            ("w.u8", .u8, [3], u8),
                                            ("w.f4", .f4, [2], f4),
                                        ], metadata: metadata)
                                    }
                                }
                            }
                        }
                    }
                }
            }

            let file = try SafetensorsFile(contentsOf: url)
            #expect(file.metadata == metadata)
            #expect(file.dataOffset % 8 == 0)
            #expect(file.tensors.map(\.name) == ["w.f32", "w.bf16", "empty.bf16", "scalar.f16", "w.i64", "empty.f32", "w.u8", "w.f4"])
            let bf16Info = try #require(file[name: "w.bf16"])
            #expect(bf16Info.dtype == .bf16 && bf16Info.shape == [4] && bf16Info.dataRange == 24 ..< 32)
            #expect(Array(file.bytes(of: try #require(file[name: "w.f32"])).bindMemory(to: Float.self)).elementsEqual(f32) { $0.bitPattern == $1.bitPattern })
            #expect(Array(file.bytes(of: bf16Info).bindMemory(to: UInt16.self)) == bf16)
            #expect(Array(file.bytes(of: try #require(file[name: "scalar.f16"])).bindMemory(to: UInt16.self)) == f16)
            #expect(Array(file.bytes(of: try #require(file[name: "w.i64"])).bindMemory(to: Int64.self)) == i64)
            #expect(Array(file.bytes(of: try #require(file[name: "w.u8"]))) == u8)
            #expect(Array(file.bytes(of: try #require(file[name: "w.f4"]))) == f4)
            #expect(file.bytes(of: try #require(file[name: "empty.bf16"])).isEmpty)
            #expect(file.bytes(of: try #require(file[name: "empty.f32"])).isEmpty)
            #expect(file[name: "missing"] == nil)
        }
    }

    @Test func serializesDeterministicallyWithPadding() throws {
        let header = try SafetensorsHeader(
            tensors: [("b", .f32, [2]), ("a\"é", .bf16, [1, 3]), ("e", .u8, [0])],
            metadata: ["z": "1", "a": "\u{1}"]
        )
        let json = #"{"__metadata__":{"a":"\u0001","z":"1"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"# +
            #""a\"é":{"dtype":"BF16","shape":[1,3],"data_offsets":[8,14]},"e":{"dtype":"U8","shape":[0],"data_offsets":[14,14]}}"#
        let padded = Array(json.utf8) + Array(repeating: UInt8(ascii: " "), count: (8 - json.utf8.count % 8) % 8)
        #expect(header.encoded == withUnsafeBytes(of: UInt64(padded.count).littleEndian, Array.init) + padded)
        #expect(header.encoded.count % 8 == 0)
        #expect(header.tensorRanges == [0 ..< 8, 8 ..< 14, 14 ..< 14])
        #expect(header.dataSize == 14)
        #expect(header.fileSize == header.encoded.count + 14)

        let again = try SafetensorsHeader(
            tensors: [("b", .f32, [2]), ("a\"é", .bf16, [1, 3]), ("e", .u8, [0])],
            metadata: ["a": "\u{1}", "z": "1"]
        )
        #expect(again.encoded == header.encoded)
    }

    @Test func padsEveryHeaderLengthToAMultipleOf8() throws {
        for length in 1 ... 16 {
            let header = try SafetensorsHeader(tensors: [(String(repeating: "x", count: length), .u8, [1])])
            #expect(header.encoded.count % 8 == 0)
            let parsed = try (header.encoded + [7]).withUnsafeBytes { try SafetensorsFile.parseHeader($0, label: "t") }
            #expect(parsed.dataOffset == header.encoded.count)
        }
    }

    @Test func leavesOutEmptyMetadata() throws {
        let header = try SafetensorsHeader(tensors: [])
        #expect(header.encoded == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
    }

    @Test("Rejects invalid headers", arguments: [
        ([("a", DType.f32, [1]), ("a", .f32, [1])], SafetensorsError.Kind.duplicateTensorName, "a"),
        ([("__metadata__", .u8, [1])], .invalidTensorEntry, "__metadata__"),
        ([("a", .f32, [-1])], .invalidShape, "a"),
        ([("a", .f32, [1 << 40, 1 << 40])], .sizeOverflow, "a"),
        ((0 ..< 9).map { ("t\($0)", .u8, [1 << 60 - 1]) }, .sizeOverflow, "t8"),
        ([("a", .f4, [3])], .sizeMismatch, "a"),
    ] as [([(String, DType, [Int])], SafetensorsError.Kind, String)])
    func rejectsInvalidHeaders(_ tensors: [(String, DType, [Int])], kind: SafetensorsError.Kind, tensor: String) {
        let error = #expect(throws: SafetensorsError.self) {
            try SafetensorsHeader(tensors: tensors.map { (name: $0.0, dtype: $0.1, shape: $0.2) }, label: "new.safetensors")
        }
        #expect(error?.kind == kind)
        #expect(error?.tensor == tensor)
        #expect(error?.description.hasPrefix("new.safetensors: tensor \"\(tensor)\": ") == true)
    }

    @Test func checksTheTensorsAppended() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("partial.safetensors")
            let header = try SafetensorsHeader(tensors: [("a", .f32, [2]), ("b", .u8, [1])])
            let writer = try SafetensorsWriter(url: url, header: header)
            let bytes: [UInt8] = Array(repeating: 0, count: 8)

            let wrongSize = #expect(throws: SafetensorsError.self) {
                try bytes.withUnsafeBytes { try writer.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< 7])) }
            }
            #expect(wrongSize?.kind == .sizeMismatch && wrongSize?.tensor == "a" && wrongSize?.file == url.path)

            try bytes.withUnsafeBytes { try writer.append($0) }
            let early = #expect(throws: SafetensorsError.self) { try writer.finish(sync: false) }
            #expect(early?.kind == .tensorCountMismatch && early?.tensor == "b")

            try bytes.withUnsafeBytes { try writer.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< 1])) }
            let extra = #expect(throws: SafetensorsError.self) { try bytes.withUnsafeBytes { try writer.append($0) } }
            #expect(extra?.kind == .tensorCountMismatch)

            try writer.finish(sync: true)
            #expect(try SafetensorsFile(contentsOf: url).tensors.map(\.name) == ["a", "b"])
        }
    }

    /// A hashed file's digest is the SHA-256 of its bytes, whether a tensor was hashed on the writing
    /// thread (a small one) or beside the write (4 MiB and more).
    @Test func theDigestIsTheSHA256OfTheFile() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("hashed.safetensors")
            let small = (0 ..< 100).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let large = (0 ..< (4 << 20) + 3).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
            let header = try SafetensorsHeader(tensors: [("small", .u8, [small.count]), ("large", .u8, [large.count])])
            let writer = try SafetensorsWriter(url: url, header: header, computeDigest: true)
            try small.withUnsafeBytes { try writer.append($0) }
            try large.withUnsafeBytes { try writer.append($0) }
            try writer.finish(sync: false)
            #expect(writer.digest == Digest(of: try Data(contentsOf: url)))
        }
    }

    @Test func reportsFilesThatCannotBeCreated() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("missing/x.safetensors")
            let error = #expect(throws: FileAccessError.self) {
                try SafetensorsWriter(url: url, header: SafetensorsHeader(tensors: []))
            }
            #expect(error?.operation == .create && error?.code == ENOENT)
            #expect(error?.description == "cannot create \(url.path): No such file or directory")
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func reportsAFullDisk() throws {
        let url = URL(fileURLWithPath: "/dev/full")
        let error = #expect(throws: FileAccessError.self) {
            try SafetensorsWriter(url: url, header: SafetensorsHeader(tensors: [("a", .u8, [1])]))
        }
        #expect(error?.operation == .write && error?.code == ENOSPC)
        #expect(error?.description.contains("/dev/full") == true)
    }
}
