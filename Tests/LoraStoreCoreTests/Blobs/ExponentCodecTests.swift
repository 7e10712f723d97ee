import Foundation
import Testing
@testable import LoraStoreCore

@Suite("ExponentCodec")
struct ExponentCodecTests {
    /// Small chunks (31 residue blocks) so that tests cross many chunk boundaries, on more threads than chunks
    /// divide evenly.
    static let smallChunks = ExponentCodec.Configuration(chunkLength: 992, maximumConcurrency: 3)

    @Test("weights round-trip and shrink", arguments: FloatLayout.allCases)
    func roundTrip(layout: FloatLayout) throws {
        let data = Self.weights(layout, count: 20_000)
        for configuration in [ExponentCodec.Configuration.default, Self.smallChunks] {
            let encoded = try #require(data.withUnsafeBytes {
                ExponentCodec.encode($0, layout: layout, configuration: configuration)
            })
            #expect(encoded.count < data.count)
            #expect(try Self.decode(encoded) == data)
        }
    }

    @Test("special values, odd lengths, empty input and sizes around chunk boundaries", arguments: FloatLayout.allCases)
    func edgeCases(layout: FloatLayout) throws {
        let specials = Self.specialValues(layout)
        let weights = Self.weights(layout, count: 4_500)
        for count in [0, 1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 991, 992, 993, 1983, 1984, 1985, 4097] {
            // Weights with every special value spliced in, so rare exponents meet common ones.
            var data = Array(weights[..<(count * layout.width)])
            for (index, element) in specials.enumerated() where (index + 1) * layout.width <= data.count {
                let position = (index * 37 % max(count, 1)) * layout.width
                data.replaceSubrange(position..<position + layout.width, with: element)
            }
            let encoded = try #require(data.withUnsafeBytes {
                ExponentCodec.encode($0, layout: layout, configuration: Self.smallChunks)
            })
            #expect(try Self.decode(encoded) == data, "\(count) elements")
        }
        let onlySpecials = specials.flatMap { $0 }
        let encoded = try #require(onlySpecials.withUnsafeBytes {
            ExponentCodec.encode($0, layout: layout, configuration: Self.smallChunks)
        })
        #expect(try Self.decode(encoded) == onlySpecials)
    }

    @Test("arbitrary bit patterns and constant tensors round-trip", arguments: FloatLayout.allCases)
    func arbitraryBits(layout: FloatLayout) throws {
        let random = Samples.randomBytes(count: layout.width * 5_001)
        let zeros = [UInt8](repeating: 0, count: layout.width * 6_000)
        for data in [random, zeros] {
            let encoded = try #require(data.withUnsafeBytes {
                ExponentCodec.encode($0, layout: layout, configuration: Self.smallChunks)
            })
            #expect(try Self.decode(encoded) == data)
        }
        #expect(random.withUnsafeBytes { ExponentCodec.encode($0, layout: layout) } == nil, "random bits do not shrink")
        let encodedZeros = try #require(zeros.withUnsafeBytes { ExponentCodec.encode($0, layout: layout) })
        #expect(encodedZeros.count < zeros.count)
    }

    @Test("ragged lengths and bad chunk lengths are refused")
    func refusesBadShapes() {
        let data = Self.weights(.f32, count: 100)
        #expect(data.dropLast().withUnsafeBytes { ExponentCodec.encode($0, layout: .f32) } == nil)
        #expect(data.dropLast().withUnsafeBytes { ExponentCodec.encode($0, layout: .bf16) } == nil)
        for chunkLength in [0, 1, 2, 1000, -32] {
            let configuration = ExponentCodec.Configuration(chunkLength: chunkLength, maximumConcurrency: 1)
            #expect(data.withUnsafeBytes { ExponentCodec.encode($0, layout: .f32, configuration: configuration) } == nil)
        }
    }

    @Test("ratio within 1 % of the elements' order-0 entropy", arguments: FloatLayout.allCases)
    func ratioNearEntropy(layout: FloatLayout) throws {
        let count = 200_000
        let data = Self.weights(layout, count: count)
        let encoded = try #require(data.withUnsafeBytes { ExponentCodec.encode($0, layout: layout) })
        // Sign and low mantissa bits are uniform in these weights, so the entropy of the symbol plus the residue
        // bits bounds what any order-0 coder can do.
        var counts: [Int: Int] = [:]
        for index in 0..<count {
            var element = 0
            for byte in 0..<layout.width { element |= Int(data[index * layout.width + byte]) << (8 * byte) }
            counts[(element >> layout.lowBits) & ((1 << layout.symbolBits) - 1), default: 0] += 1
        }
        let entropy = counts.values.reduce(0.0) { bits, occurrences in
            let frequency = Double(occurrences) / Double(count)
            return bits - frequency * log2(frequency)
        }
        let ideal = (entropy + Double(layout.lowBits + 1)) * Double(count) / 8
        #expect(Double(encoded.count) >= ideal * 0.999)
        #expect(Double(encoded.count) <= ideal * 1.01)
    }

    @Test("output is deterministic and independent of the thread count")
    func deterministic() throws {
        for layout in FloatLayout.allCases {
            let data = Self.weights(layout, count: 30_000)
            var encodings: Set<[UInt8]> = []
            for threads in [1, 2, 5] {
                let configuration = ExponentCodec.Configuration(chunkLength: 992, maximumConcurrency: threads)
                for _ in 0..<2 {
                    encodings.insert(try #require(data.withUnsafeBytes {
                        ExponentCodec.encode($0, layout: layout, configuration: configuration)
                    }))
                }
            }
            #expect(encodings.count == 1, "\(layout)")
            let encoded = try #require(encodings.first)
            for threads in [1, 2, 5] {
                #expect(try Self.decode(encoded, threads: threads) == data)
            }
        }
    }

    @Test("every truncation throws", arguments: FloatLayout.allCases)
    func truncated(layout: FloatLayout) throws {
        let encoded = try Self.sampleEncoding(layout)
        let unexpected = (0..<encoded.count).compactMap { cut -> String? in
            do {
                _ = try Self.decode(Array(encoded[..<cut]))
                return "cut at \(cut) decoded"
            } catch is BlobCodecError {
                return nil
            } catch {
                return "cut at \(cut) threw \(error)"
            }
        }
        #expect(unexpected.isEmpty, "\(unexpected.count) cuts, first \(unexpected.prefix(5))")
    }

    @Test("random damage throws or decodes to other bytes, in bounds", arguments: FloatLayout.allCases)
    func fuzz(layout: FloatLayout) throws {
        let data = Self.weights(layout, count: 3_001)
        let encoded = try Self.sampleEncoding(layout)
        var generator = SplitMix64(state: UInt64(layout.rawValue) * 1_000_003)
        var detected = 0
        var resized: [Int] = []
        let trials = 3_000
        for trial in 0..<trials {
            var damaged = encoded
            let flips = 1 + Int(generator.next() % 3)
            for _ in 0..<flips {
                let position = Int(generator.next() % UInt64(damaged.count))
                damaged[position] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            }
            if trial % 4 == 0 { damaged.removeLast(1 + Int(generator.next() % 16)) }
            do {
                let decoded = try Self.decode(damaged)
                // Damaged residue bits decode to other elements, which the blob digest catches.
                if decoded.count != data.count { resized.append(trial) }
            } catch {
                detected += 1
            }
        }
        #expect(resized.isEmpty, "trials \(resized.prefix(5)) decoded to another size")
        // Residue bytes carry no redundancy; damage anywhere else is nearly always detected by the decoder.
        #expect(detected > trials / 10)
    }

    @Test("damaged headers and code tables throw", arguments: FloatLayout.allCases)
    func corruptHeader(layout: FloatLayout) throws {
        let encoded = try Self.sampleEncoding(layout)
        let entryCount = Int(encoded[18]) | Int(encoded[19]) << 8
        let original = Self.weights(layout, count: 3_001)
        for offset in 0..<(20 + 4 * entryCount) {
            for change: UInt8 in [0xFF, 0x01, 0x80] {
                var damaged = encoded
                damaged[offset] ^= change
                if offset < 20 {
                    #expect(throws: BlobCodecError.self, "byte \(offset) ^ \(change)") { try Self.decode(damaged) }
                } else if let decoded = try? Self.decode(damaged) {
                    // A changed code entry that still validates must also leave every stream ending exactly.
                    #expect(decoded != original, "byte \(offset) ^ \(change)")
                }
            }
        }
    }

    @Test("specific errors: foreign data, unknown version, wrong output size, impossible sizes")
    func specificErrors() throws {
        let encoded = try Self.sampleEncoding(.bf16)
        #expect(throws: BlobCodecError.notAnEncoding) { try Self.decode(Array("LSBG\u{1}not ours".utf8)) }
        var future = encoded
        future[4] = 3
        #expect(throws: BlobCodecError.unsupportedVersion(3)) { try Self.decode(future) }
        #expect(throws: BlobCodecError.outputSizeMismatch(expected: 6_002, actual: 6_000)) {
            var output = [UInt8](repeating: 0, count: 6_000)
            try encoded.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { try ExponentCodec.decode(input, into: $0) }
            }
        }
        // A tiny encoding that claims a huge size is rejected before anyone allocates the output.
        var huge = encoded
        huge.replaceSubrange(6..<14, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
        #expect(throws: BlobCodecError.self) { try huge.withUnsafeBytes { try ExponentCodec.decodedSize($0) } }
        #expect(throws: BlobCodecError.self) { try Self.decode(encoded + [0]) }
        #expect(ExponentCodec.isEncoding(encoded.withUnsafeBytes { $0 }))
    }

    @Test("blobs written in format version 1 still decode, and their damage is still caught", arguments: FloatLayout.allCases)
    func readsVersion1(layout: FloatLayout) throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "ExponentCodecV1")
        let name = layout.dtype.rawValue.lowercased()
        let encoded = try [UInt8](Data(contentsOf: folder.appending(path: "\(name).xans")))
        let original = try [UInt8](Data(contentsOf: folder.appending(path: "\(name).bin")))
        #expect(encoded[4] == 1, "the fixture is a version 1 encoding")
        #expect(try Self.decode(encoded) == original)
        for cut in stride(from: 0, to: encoded.count, by: 97) {
            #expect(throws: BlobCodecError.self, "cut at \(cut)") { try Self.decode(Array(encoded[..<cut])) }
        }
        var damaged = encoded
        damaged[damaged.count - 1] ^= 0x10
        #expect((try? Self.decode(damaged)) != original)
    }

    @Test(
        "every lane decoder this CPU runs gives the portable decoder's bytes and errors",
        arguments: FloatLayout.allCases, LaneDecoder.allCases.filter { $0 != .portable && $0.isAvailable })
    func laneDecodersMatchPortable(layout: FloatLayout, decoder: LaneDecoder) throws {
        try Self.expectMatchesPortable(layout: layout, decoder: decoder)
    }

    /// The test above leaves the AVX-512 decoder out silently on a CPU without AVX-512 VBMI2 (and has no
    /// cases at all without AVX2); this one is skipped there with its reason, so the gap shows in the report.
    @Test(
        "the AVX-512 lane decoder gives the portable decoder's bytes and errors",
        .enabled(
            if: LaneDecoder.avx512.isAvailable,
            "this CPU has no AVX-512 VBMI2: the AVX-512 lane decoder is not compared with the portable one"),
        arguments: FloatLayout.allCases)
    func avx512DecoderMatchesPortable(layout: FloatLayout) throws {
        try Self.expectMatchesPortable(layout: layout, decoder: .avx512)
    }

    /// Weights with special values spliced in, and 300 single-byte damages of their encoding: `decoder`
    /// decodes each to the portable decoder's bytes, or fails with its error.
    static func expectMatchesPortable(layout: FloatLayout, decoder: LaneDecoder) throws {
        var data = Self.weights(layout, count: 20_000)
        for (index, element) in Self.specialValues(layout).enumerated() {
            let position = index * 1_423 * layout.width
            data.replaceSubrange(position..<position + layout.width, with: element)
        }
        let encoded = try #require(data.withUnsafeBytes {
            ExponentCodec.encode($0, layout: layout, configuration: Self.smallChunks)
        })
        #expect(try Self.decode(encoded, decoder: decoder) == data)
        #expect(try Self.decode(encoded, decoder: .portable) == data)
        var generator = SplitMix64(state: UInt64(layout.rawValue) * 7_919)
        for _ in 0..<300 {
            var damaged = encoded
            let position = Int(generator.next() % UInt64(damaged.count))
            damaged[position] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            #expect(
                Outcome { try Self.decode(damaged, decoder: decoder) }
                    == Outcome { try Self.decode(damaged, decoder: .portable) },
                "byte \(position)")
        }
    }

    // MARK: - Store integration

    @Test("the store writes F32, F16 and BF16 with the exponent codec and still reads bgzip blobs")
    func storeCodecs() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            for layout in FloatLayout.allCases {
                let data = Self.weights(layout, count: 8_192)
                try data.withUnsafeBytes { bytes in
                    let digest = Digest(of: bytes)
                    let written = try blobs.write(bytes, digest: digest, encoding: .floatingPoint(layout))
                    #expect(written.codec == .exponentANS && written.storedSize < bytes.count)
                    let again = try blobs.write(bytes, digest: digest, encoding: .compressed(elementWidth: layout.width))
                    #expect(!again.created && again.codec == .exponentANS, "an existing blob keeps its codec")
                    let contents = try blobs.read(digest, codec: .exponentANS, verify: true)
                    withExtendedLifetime(contents) { #expect(Array(contents.bytes) == data) }
                }
                // A bgzip blob, as older stores hold them.
                var shifted = data
                shifted[0] ^= 1
                try shifted.withUnsafeBytes { bytes in
                    let digest = Digest(of: bytes)
                    let legacy = try blobs.write(bytes, digest: digest, encoding: .compressed(elementWidth: layout.width))
                    #expect(legacy.codec == .byteGroupedZlib)
                    #expect(try blobs.existingBlob(digest, logicalSize: bytes.count)?.codec == .byteGroupedZlib)
                    let contents = try blobs.read(digest, codec: .byteGroupedZlib, verify: true)
                    withExtendedLifetime(contents) { #expect(Array(contents.bytes) == shifted) }
                }
            }
        }
    }

    @Test("the codec policy picks the exponent codec for floating-point adapter tensors only")
    func policy() {
        let policy = CodecPolicy()
        #expect(policy.encoding(for: .adapter, dtype: .bf16) == .floatingPoint(.bf16))
        #expect(policy.encoding(for: .adapter, dtype: .f16) == .floatingPoint(.f16))
        #expect(policy.encoding(for: .adapter, dtype: .f32) == .floatingPoint(.f32))
        #expect(policy.encoding(for: .adapter, dtype: .i32) == .compressed(elementWidth: 4))
        #expect(policy.encoding(for: .adapter, dtype: .f64) == .compressed(elementWidth: 8))
        #expect(policy.encoding(for: .base, dtype: .bf16) == .raw)
        #expect(CodecPolicy(compressBase: true).encoding(for: .base, dtype: .f32) == .floatingPoint(.f32))
    }

    @Test("pushing an adapter stores its weights with the exponent codec and reads them back")
    func pushUsesTheCodec() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory)
            try test.push("base_fp32", as: "micro/base:fp32")
            try test.push("base_bf16", as: "micro/base:bf16")
            for (fixture, base) in [("e_r8_qv_bf16", "bf16"), ("a_r8_qv", "fp32")] {
                let reference = "acme/\(fixture.replacingOccurrences(of: "_", with: "-"))"
                try test.push("adapters/\(fixture)", as: reference, base: "micro/base:\(base)")
                let shown = try test.store.describe(try Reference(parsing: reference))
                let compressed = shown.tensors.filter { $0.storedSize < $0.size }
                #expect(!compressed.isEmpty && compressed.allSatisfy { $0.codec == .exponentANS }, "\(fixture)")
            }
            #expect(try test.store.verify(deep: true).faults.isEmpty)
        }
    }

    // MARK: - Samples

    /// What a decoding gave: the bytes, or the error.
    enum Outcome: Equatable {
        case decoded([UInt8])
        case failed(String)

        init(_ decode: () throws -> [UInt8]) {
            do { self = .decoded(try decode()) } catch { self = .failed("\(error)") }
        }
    }

    /// `count` N(0, 0.02) weights of `layout`, generated in F32 and rounded to nearest even.
    static func weights(_ layout: FloatLayout, count: Int) -> [UInt8] {
        let f32 = Samples.weights(elementWidth: 4, count: count)
        switch layout {
        case .f32:
            return f32
        case .bf16:
            return Samples.weights(elementWidth: 2, count: count)
        case .f16:
            var bytes: [UInt8] = []
            for index in 0..<count {
                let bits = UInt32(f32[4 * index]) | UInt32(f32[4 * index + 1]) << 8 | UInt32(f32[4 * index + 2]) << 16
                    | UInt32(f32[4 * index + 3]) << 24
                withUnsafeBytes(of: Float16(Float(bitPattern: bits)).bitPattern.littleEndian) { bytes += $0 }
            }
            return bytes
        }
    }

    /// NaNs, infinities, zeros of both signs, subnormals, extremes and one, as little-endian elements.
    static func specialValues(_ layout: FloatLayout) -> [[UInt8]] {
        let f32: [UInt32] = [
            0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001, 0x7F80_0000, 0xFF80_0000, 0, 0x8000_0000, 1, 0x8000_0001,
            0x007F_FFFF, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x3F80_0000, 0x0080_0000,
        ]
        let f16: [UInt16] = [0x7E00, 0xFE01, 0x7C01, 0x7C00, 0xFC00, 0, 0x8000, 1, 0x8001, 0x03FF, 0x7BFF, 0xFBFF, 0x3C00]
        switch layout {
        case .f32: return f32.map { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        case .bf16: return f32.map { withUnsafeBytes(of: UInt16(truncatingIfNeeded: $0 >> 16).littleEndian, Array.init) }
        case .f16: return f16.map { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        }
    }

    /// 3,001 weights in chunks of 992 elements: four chunks, the last one of 25 elements.
    static func sampleEncoding(_ layout: FloatLayout) throws -> [UInt8] {
        let data = weights(layout, count: 3_001)
        return try #require(data.withUnsafeBytes {
            ExponentCodec.encode($0, layout: layout, configuration: smallChunks)
        })
    }

    static func decode(
        _ encoded: [UInt8], threads: Int = 3, decoder: LaneDecoder = .preferred
    ) throws -> [UInt8] {
        try encoded.withUnsafeBytes { input in
            var output = [UInt8](repeating: 0, count: try ExponentCodec.decodedSize(input))
            try output.withUnsafeMutableBytes {
                try ExponentCodec.decode(input, into: $0, maximumConcurrency: threads, decoder: decoder)
            }
            return output
        }
    }
}
