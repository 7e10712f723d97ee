import Foundation
import LoraStoreCore
import Testing

@Suite("ByteGroupedCodec")
struct ByteGroupedCodecTests {
    /// Small chunks (not a power of two, so the last chunk is short) to exercise the chunk tables.
    static let smallChunks = ByteGroupedCodec.Configuration(
        level: 1, strategy: ByteGroupedCodec.Configuration.default.strategy, chunkLength: 1000, maximumConcurrency: 3
    )

    @Test("round trip", arguments: [1, 2, 4, 8])
    func roundTrip(width: Int) throws {
        let data = Samples.weights(elementWidth: width, count: 20_000)
        for configuration in [ByteGroupedCodec.Configuration.default, Self.smallChunks] {
            let encoded = try #require(
                data.withUnsafeBytes {
                    ByteGroupedCodec.encode($0, elementWidth: width, minimumGain: 0.03, configuration: configuration)
                }
            )
            #expect(encoded.count < data.count)
            #expect(try Samples.decode(encoded) == data)
        }
    }

    @Test("a stored plane after a deflated plane, and zero-filled tensors")
    func planeOrderAndZeros() throws {
        // Byte-swapped BF16: plane 0 carries the exponent (deflated), plane 1 the mantissa (stored after it).
        var swapped = Samples.weights(elementWidth: 2, count: 10_000)
        for index in stride(from: 0, to: swapped.count, by: 2) { swapped.swapAt(index, index + 1) }
        let zeros = [UInt8](repeating: 0, count: 40_000)
        for data in [swapped, zeros] {
            let encoded = try #require(data.withUnsafeBytes {
                ByteGroupedCodec.encode($0, elementWidth: 2, minimumGain: 0.03, configuration: Self.smallChunks)
            })
            #expect(try Samples.decode(encoded) == data)
        }
        let encodedZeros = try #require(zeros.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: 2) })
        #expect(encodedZeros.count < zeros.count / 50)
    }

    @Test("every plane forced through the encoder round-trips, including stored fallbacks", arguments: [1, 2, 4, 8])
    func forcedRoundTrip(width: Int) throws {
        let data = Samples.randomBytes(count: width * 3_001)
        let encoded = try #require(
            data.withUnsafeBytes {
                ByteGroupedCodec.encode($0, elementWidth: width, minimumGain: 0, configuration: Self.smallChunks)
            }
        )
        #expect(try Samples.decode(encoded) == data)
    }

    @Test("empty input is not worth encoding, but a forced encoding round-trips")
    func emptyInput() throws {
        let empty: [UInt8] = []
        for width in [1, 2, 4, 8] {
            #expect(empty.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: width) } == nil)
            let encoded = try #require(empty.withUnsafeBytes {
                ByteGroupedCodec.encode($0, elementWidth: width, minimumGain: 0)
            })
            #expect(try Samples.decode(encoded) == [])
        }
    }

    @Test("random bytes gain nothing", arguments: [1, 2, 4, 8])
    func randomBytes(width: Int) {
        let data = Samples.randomBytes(count: 64_000)
        #expect(data.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: width) } == nil)
    }

    @Test("unsupported widths and ragged lengths are refused")
    func refusesBadShapes() {
        let data = Samples.weights(elementWidth: 2, count: 1_000)
        for width in [0, -2, 3, 16] {
            #expect(data.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: width) } == nil)
        }
        let ragged = Array(data.dropLast())
        #expect(ragged.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: 2) } == nil)
        #expect(data.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: 2, minimumGain: .nan) } == nil)
    }

    @Test("BF16 weights compress to the exponent plane's entropy, with the mantissa plane stored")
    func bf16Ratio() throws {
        let count = 200_000
        let data = Samples.weights(elementWidth: 2, count: count)
        let encoded = try #require(data.withUnsafeBytes { ByteGroupedCodec.encode($0, elementWidth: 2) })
        // Plane 0 (mantissa) is near-random and stored; plane 1 (sign and exponent) costs about its entropy.
        let exponentBytes = stride(from: 1, to: data.count, by: 2).map { data[$0] }
        let entropyBytes = Samples.entropyBits(exponentBytes) * Double(count) / 8
        let ideal = Double(count) + entropyBytes
        #expect(Double(encoded.count) >= Double(count))
        #expect(Double(encoded.count) <= ideal * 1.02 + 1_024)
        #expect(Double(encoded.count) < Double(data.count) * 0.9)
    }

    @Test("output is deterministic and independent of the thread count")
    func deterministic() throws {
        let data = Samples.weights(elementWidth: 4, count: 30_000)
        var encodings: Set<[UInt8]> = []
        for threads in [1, 2, 5] {
            var configuration = Self.smallChunks
            configuration.maximumConcurrency = threads
            for _ in 0..<2 {
                let encoded = try #require(data.withUnsafeBytes {
                    ByteGroupedCodec.encode($0, elementWidth: 4, minimumGain: 0.03, configuration: configuration)
                })
                encodings.insert(encoded)
            }
        }
        #expect(encodings.count == 1)
    }

    @Test("truncated encodings throw")
    func truncated() throws {
        let encoded = try Self.sampleEncoding()
        let cuts = Array(0..<80) + Array(stride(from: 80, to: encoded.count, by: 97)) + [encoded.count - 1]
        for cut in cuts {
            let prefix = Array(encoded[..<cut])
            #expect(throws: BlobCodecError.self, "cut at \(cut)") { try Samples.decode(prefix) }
        }
    }

    @Test("every damaged header or chunk-table byte is detected")
    func corruptHeader() throws {
        let encoded = try Self.sampleEncoding()
        let chunkCount = (3_000 + 999) / 1000
        let headerAndFirstTable = 19 + 2 * 9 + chunkCount * 4
        for offset in 0..<headerAndFirstTable {
            // Plane 0 is stored, so the first chunk table belongs to plane 1, right after plane 0's bytes.
            let position = offset < 37 ? offset : offset + 3_000
            for change: UInt8 in [0xFF, 0x01, 0x80] {
                var damaged = encoded
                damaged[position] ^= change
                #expect(throws: BlobCodecError.self, "byte \(position) ^ \(change)") { try Samples.decode(damaged) }
            }
        }
    }

    @Test("damaged payloads and trailing bytes never crash")
    func corruptPayload() throws {
        let encoded = try Self.sampleEncoding()
        var generator = SplitMix64(state: 99)
        for _ in 0..<300 {
            var damaged = encoded
            let position = 37 + Int(generator.next() % UInt64(encoded.count - 37))
            damaged[position] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            // Raw deflate has no checksum, so a damaged stream may still decode; it must do so in bounds.
            if let decoded = try? Samples.decode(damaged) { #expect(decoded.count == 6_000) }
        }
        #expect(throws: BlobCodecError.self) { try Samples.decode(encoded + [0]) }
    }

    @Test("specific errors: foreign data, unknown version, wrong output size, impossible sizes")
    func specificErrors() throws {
        let encoded = try Self.sampleEncoding()
        #expect(throws: BlobCodecError.notAnEncoding) { try Samples.decode(Array("PK\u{3}\u{4}not ours".utf8)) }
        var future = encoded
        future[4] = 2
        #expect(throws: BlobCodecError.unsupportedVersion(2)) { try Samples.decode(future) }
        #expect(throws: BlobCodecError.outputSizeMismatch(expected: 6_000, actual: 5_998)) {
            var output = [UInt8](repeating: 0, count: 5_998)
            try encoded.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { try ByteGroupedCodec.decode(input, into: $0) }
            }
        }
        // A tiny deflate plane that claims a huge size is rejected before anyone allocates the output.
        var header: [UInt8] = Array("LSBG".utf8) + [1, 1]
        header += withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init)
        header += withUnsafeBytes(of: UInt32(1 << 30).littleEndian, Array.init) + [1, 1]
        header += withUnsafeBytes(of: UInt64(1024 * 4 + 8).littleEndian, Array.init)
        header += [UInt8](repeating: 0, count: 1024 * 4 + 8)
        #expect(throws: BlobCodecError.self) { try header.withUnsafeBytes { try ByteGroupedCodec.decodedSize($0) } }
        let message = BlobCodecError.truncated("plane 1 is missing").description
        #expect(message.contains("truncated") && message.contains("plane 1"))
    }

    /// 3,000 BF16 weights in 1000-byte chunks: plane 0 stored, plane 1 deflated in three chunks.
    static func sampleEncoding() throws -> [UInt8] {
        let data = Samples.weights(elementWidth: 2, count: 3_000)
        return try #require(data.withUnsafeBytes {
            ByteGroupedCodec.encode($0, elementWidth: 2, minimumGain: 0.03, configuration: smallChunks)
        })
    }
}

/// A seeded generator, so test data is the same on every run.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}

enum Samples {
    /// `count` N(0, 0.02) weights as little-endian elements: width 2 is BF16 (rounded to nearest even), 4 is F32,
    /// 8 is F64, and width 1 keeps the BF16 exponent byte (a skewed byte distribution).
    static func weights(elementWidth: Int, count: Int) -> [UInt8] {
        var generator = SplitMix64(state: 2024)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * elementWidth)
        for _ in 0..<count {
            let u1 = max(generator.nextUnit(), 0x1p-53)
            let value = (-2 * log(u1)).squareRoot() * cos(2 * .pi * generator.nextUnit()) * 0.02
            let bits = Float(value).bitPattern
            let bf16 = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
            switch elementWidth {
            case 1: bytes.append(UInt8(truncatingIfNeeded: bf16 >> 8))
            case 2: withUnsafeBytes(of: bf16.littleEndian) { bytes += $0 }
            case 4: withUnsafeBytes(of: bits.littleEndian) { bytes += $0 }
            default: withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
            }
        }
        return bytes
    }

    static func randomBytes(count: Int) -> [UInt8] {
        var generator = SplitMix64(state: 7)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 32) }
    }

    /// Order-0 entropy in bits per byte.
    static func entropyBits(_ bytes: [UInt8]) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for byte in bytes { counts[Int(byte)] += 1 }
        return counts.filter { $0 > 0 }.reduce(0) { bits, count in
            let frequency = Double(count) / Double(bytes.count)
            return bits - frequency * log2(frequency)
        }
    }

    static func decode(_ encoded: [UInt8]) throws -> [UInt8] {
        try encoded.withUnsafeBytes { input in
            var output = [UInt8](repeating: 0, count: try ByteGroupedCodec.decodedSize(input))
            try output.withUnsafeMutableBytes { try ByteGroupedCodec.decode(input, into: $0) }
            return output
        }
    }
}
