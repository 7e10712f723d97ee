import Testing
import LoraStoreCore

@Suite struct FloatConversionTests {
    private func pseudoRandomBits(_ count: Int, seed: UInt64) -> [UInt32] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt32(truncatingIfNeeded: state >> 32)
        }
    }

    @Test func bfloat16RoundsTiesToEven() {
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x3F80_7FFF)) == 0x3F80)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0xBF81_8000)) == 0xBF82)
    }

    @Test func bfloat16KeepsSpecialValues() {
        #expect(FloatConversion.bfloat16(from: .infinity) == 0x7F80)
        #expect(FloatConversion.bfloat16(from: -.infinity) == 0xFF80)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x7FC0_0000)) == 0x7FC0)
        // A signalling NaN whose payload sits only in the discarded bits must stay NaN, made quiet.
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x7F80_0001)) == 0x7FC0)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0xFF80_0001)) == 0xFFC0)
        #expect(FloatConversion.bfloat16(from: Float(bitPattern: 0x7FFF_FFFF)) == 0x7FFF)
        #expect(FloatConversion.bfloat16(from: -0.0) == 0x8000)
    }

    @Test func bulkBFloat16MatchesScalar() throws {
        let count = 1037
        var bits = pseudoRandomBits(count, seed: 1)
        bits[3] = 0x7F80_0001
        bits[9] = 0x3F80_8000
        bits[10] = 0x3F81_8000
        bits[1030] = 0xFF80_0001
        bits[1031] = 0x7F80_0000
        let values = bits.map { Float(bitPattern: $0) }
        var narrowed = [UInt16](repeating: 0, count: count)
        values.withUnsafeBytes { source in
            narrowed.withUnsafeMutableBytes { destination in
                FloatConversion.floatToBFloat16(source.baseAddress!, destination.baseAddress!, count: count)
            }
        }
        #expect(narrowed == values.map { FloatConversion.bfloat16(from: $0) })

        var widened = [Float](repeating: 0, count: count)
        narrowed.withUnsafeBytes { source in
            widened.withUnsafeMutableBytes { destination in
                FloatConversion.bfloat16ToFloat(source.baseAddress!, destination.baseAddress!, count: count)
            }
        }
        #expect(widened.map(\.bitPattern) == narrowed.map { UInt32($0) << 16 })
    }

    @Test func float16RoundTripsEveryBitPattern() {
        let all = (0...UInt16.max).map { $0 }
        var widened = [Float](repeating: 0, count: all.count)
        var back = [UInt16](repeating: 0, count: all.count)
        all.withUnsafeBytes { source in
            widened.withUnsafeMutableBytes { destination in
                FloatConversion.float16ToFloat(source.baseAddress!, destination.baseAddress!, count: all.count)
            }
        }
        widened.withUnsafeBytes { source in
            back.withUnsafeMutableBytes { destination in
                FloatConversion.floatToFloat16(source.baseAddress!, destination.baseAddress!, count: all.count)
            }
        }
        var mismatches: [(bits: UInt16, widened: Float, back: UInt16)] = []
        for bits in all {
            let (wide, narrow) = (widened[Int(bits)], back[Int(bits)])
            let agrees = Float16(bitPattern: bits).isNaN
                ? wide.isNaN && Float16(bitPattern: narrow).isNaN
                : wide == FloatConversion.float(fromFloat16: bits) && narrow == bits
            if !agrees { mismatches.append((bits, wide, narrow)) }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) bit patterns, first \(mismatches.prefix(5))")
    }

    @Test func float16NarrowingMatchesScalarRounding() {
        let count = 2051
        let values = pseudoRandomBits(count, seed: 7).map { Float(bitPattern: ($0 & 0x8FFF_FFFF) | 0x3000_0000) }
        var narrowed = [UInt16](repeating: 0, count: count)
        values.withUnsafeBytes { source in
            narrowed.withUnsafeMutableBytes { destination in
                FloatConversion.floatToFloat16(source.baseAddress!, destination.baseAddress!, count: count)
            }
        }
        #expect(narrowed == values.map { Float16($0).bitPattern })
        #expect(FloatConversion.float16(from: 65520) == Float16.infinity.bitPattern)
        #expect(FloatConversion.float16(from: 1 + 1.0 / 2048) == 0x3C00)
    }

    @Test(arguments: [DType.f32, .f16, .bf16], [DType.f32, .f16, .bf16])
    func convertMatchesScalarPath(from source: DType, to destination: DType) throws {
        let count = 77
        let values = pseudoRandomBits(count, seed: 3).map { Float(Int32(bitPattern: $0) >> 16) / 1024 }
        func encode(_ value: Float, _ type: DType) -> [UInt8] {
            switch type {
            case .f32: withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            case .f16: withUnsafeBytes(of: FloatConversion.float16(from: value).littleEndian) { Array($0) }
            default: withUnsafeBytes(of: FloatConversion.bfloat16(from: value).littleEndian) { Array($0) }
            }
        }
        func decode(_ bytes: ArraySlice<UInt8>, _ type: DType) -> Float {
            let word = bytes.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            switch type {
            case .f32: return Float(bitPattern: word)
            case .f16: return FloatConversion.float(fromFloat16: UInt16(word))
            default: return FloatConversion.float(fromBFloat16: UInt16(word))
            }
        }
        let input = values.flatMap { encode($0, source) }
        let sourceWidth = source.byteWidth ?? 4
        let expected = (0..<count).flatMap { index in
            encode(decode(input[(index * sourceWidth)..<((index + 1) * sourceWidth)], source), destination)
        }
        var output = [UInt8](repeating: 0, count: count * (destination.byteWidth ?? 4))
        try input.withUnsafeBytes { src in
            try output.withUnsafeMutableBytes { dst in
                try FloatConversion.convert(src.baseAddress!, from: source, to: dst.baseAddress!, as: destination, count: count)
            }
        }
        #expect(output == expected)
    }

    @Test func convertRejectsOtherTypes() {
        var buffer = [UInt8](repeating: 0, count: 16)
        buffer.withUnsafeMutableBytes { raw in
            #expect(throws: FloatConversion.UnsupportedType(dtype: .i32)) {
                try FloatConversion.convert(raw.baseAddress!, from: .i32, to: raw.baseAddress!, as: .f32, count: 2)
            }
            #expect(throws: FloatConversion.UnsupportedType(dtype: .f64)) {
                try FloatConversion.convert(raw.baseAddress!, from: .f32, to: raw.baseAddress!, as: .f64, count: 2)
            }
        }
    }
}
