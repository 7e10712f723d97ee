import Testing
@testable import LoraStoreCore

@Suite("ANSLanes")
struct ANSLanesTests {
    /// The lane decoders this CPU runs.
    static let decoders = LaneDecoder.allCases.filter(\.isAvailable)

    /// 12-bit values whose high 8 bits fall off geometrically and whose low 4 bits take 4 of their 16 values,
    /// so that the code keeps the frequent groups exact and escapes the low bits of the rare ones; the code is
    /// fitted to 20,001 such values, of which the run is the first `count`.
    static func sample(count: Int, seed: UInt64 = 1) -> (values: [UInt16], code: ANSCode) {
        var generator = SplitMix64(state: seed)
        let values = (0..<20_001).map { _ in
            let group = min(UInt64(255), UInt64((generator.next() | 1).leadingZeroBitCount) * 3)
            return UInt16(group << 4 | generator.next() & 0x3)
        }
        var histogram = [Int](repeating: 0, count: 1 << 12)
        for value in values { histogram[Int(value)] += 1 }
        let code = ANSCode.fitting(histogram: histogram, symbolBits: 12, escapableBits: 4)
        return (Array(values[..<count]), code!)
    }

    static func encode(_ values: [UInt16], code: ANSCode) -> [UInt8] {
        let tables = code.encodingTables()
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: ANSLanes.scratchSize(values.count), alignment: 64)
        defer { scratch.deallocate() }
        var output = [UInt8](repeating: 0, count: ANSLanes.bound(values.count))
        let length = values.withUnsafeBufferPointer { values in
            output.withUnsafeMutableBytes { output in
                ANSLanes.encode(
                    values.baseAddress ?? UnsafePointer(bitPattern: 2)!, count: values.count, tables: tables,
                    scratch: scratch, into: output.baseAddress!)
            }
        }
        return Array(output[..<length])
    }

    static func decode(
        _ stream: [UInt8], count: Int, code: ANSCode, decoder: LaneDecoder
    ) -> Result<[UInt16], ANSLanes.Failure> {
        let table = code.laneDecodingTable()
        var output = [UInt16](repeating: 0, count: count)
        let failure = stream.withUnsafeBytes { stream in
            table.withUnsafeBufferPointer { table in
                output.withUnsafeMutableBufferPointer { output -> ANSLanes.Failure? in
                    do throws(ANSLanes.Failure) {
                        try ANSLanes.decode(
                            stream, count: count, table: table.baseAddress!,
                            into: output.baseAddress ?? UnsafeMutablePointer(bitPattern: 2)!, decoder: decoder)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
        }
        if let failure { return .failure(failure) }
        return .success(output)
    }

    @Test("runs of every length round-trip through every decoder, escaped bits included",
          arguments: [0, 1, 2, 63, 64, 65, 127, 128, 129, 1_000, 4_096, 20_001])
    func roundTrip(count: Int) {
        let (values, code) = Self.sample(count: count)
        #expect(code.entries.contains { $0.escapeBits > 0 } && code.entries.contains { $0.escapeBits == 0 })
        let stream = Self.encode(values, code: code)
        #expect(stream.count <= ANSLanes.bound(count))
        for decoder in Self.decoders {
            #expect(Self.decode(stream, count: count, code: code, decoder: decoder) == .success(values), "\(decoder)")
        }
    }

    @Test("a stream that is not taken exactly, word for word, is refused")
    func refusesStreamsNotTakenExactly() {
        let count = 5_000
        let (values, code) = Self.sample(count: count)
        let stream = Self.encode(values, code: code)
        for decoder in Self.decoders {
            func failure(_ stream: [UInt8], count: Int = count) -> ANSLanes.Failure? {
                guard case .failure(let failure) = Self.decode(stream, count: count, code: code, decoder: decoder)
                else { return nil }
                return failure
            }
            #expect(failure(stream) == nil)
            #expect(failure(stream + [0, 0]) == .wordsLeftOver(1))
            #expect(failure(stream + [0]) == .oddLength)
            #expect(failure(Array(stream.dropLast(2))) != nil)
            #expect(failure(Array(stream.prefix(100))) != nil)
            #expect(failure(stream, count: count - 64) != nil)
        }
    }

    @Test("damage is detected far more often than not, and every decoder agrees on it")
    func damage() {
        let count = 3_000
        let (values, code) = Self.sample(count: count, seed: 9)
        let stream = Self.encode(values, code: code)
        var generator = SplitMix64(state: 5)
        var detected = 0
        for _ in 0..<500 {
            var damaged = stream
            damaged[Int(generator.next() % UInt64(damaged.count))] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
            let portable = Self.decode(damaged, count: count, code: code, decoder: .portable)
            for decoder in Self.decoders {
                #expect(Self.decode(damaged, count: count, code: code, decoder: decoder) == portable, "\(decoder)")
            }
            if case .failure = portable { detected += 1 }
        }
        // A flipped bit desynchronises its lane, which then rarely ends in state 0 on exactly its own words.
        #expect(detected > 400)
    }
}
