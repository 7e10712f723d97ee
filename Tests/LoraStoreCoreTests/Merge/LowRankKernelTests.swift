import Testing
@testable import LoraStoreCore

/// Deterministic values in [-magnitude, magnitude].
private func values(_ count: Int, seed: UInt64, magnitude: Float) -> [Float] {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * magnitude
    }
}

/// Encodes F32 values as little-endian bytes of `type` (rounding once, to nearest even); throws for a
/// type that is not F32, F16 or BF16.
private func encode(_ floats: [Float], as type: DType) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: floats.count * (type.byteWidth ?? 4))
    try floats.withUnsafeBytes { source in
        try bytes.withUnsafeMutableBytes { destination in
            try FloatConversion.convert(source.baseAddress!, from: .f32, to: destination.baseAddress!, as: type, count: floats.count)
        }
    }
    return bytes
}

/// Decodes little-endian F32, F16 or BF16 bytes to F32 values; throws for any other type.
private func decode(_ bytes: [UInt8], as type: DType) throws -> [Float] {
    let count = bytes.count / (type.byteWidth ?? 4)
    var floats = [Float](repeating: 0, count: count)
    try bytes.withUnsafeBytes { source in
        try floats.withUnsafeMutableBytes { destination in
            try FloatConversion.convert(source.baseAddress!, from: type, to: destination.baseAddress!, as: .f32, count: count)
        }
    }
    return floats
}

/// The specified result computed naively: delta from zero in increasing k with FMA, added to W in F32,
/// rounded once into the output type.
private func reference(base: [Float], update: LowRankUpdate, outputType: DType) throws -> [UInt8] {
    var sums = [Float](repeating: 0, count: update.rows * update.cols)
    let left = update.scaledLeft()
    let right = update.stackedRight()
    for i in 0..<update.rows {
        for j in 0..<update.cols {
            var delta: Float = 0
            for k in 0..<update.rank {
                delta = delta.addingProduct(left[i * update.rank + k], right[k * update.cols + j])
            }
            sums[i * update.cols + j] = base[i * update.cols + j] + delta
        }
    }
    return try encode(sums, as: outputType)
}

/// The implementations this CPU runs; every exactness test runs on each of them.
private let implementations = LowRankKernel.Implementation.allCases.filter(\.isAvailable)

/// Merges into a fresh buffer of output bytes that starts `offset` bytes past a 64-byte boundary, so that
/// the AVX-512 kernel's streaming stores (taken from `streamingStoresFrom` output bytes) meet aligned and
/// unaligned rows as chosen.
private func merge(
    _ base: [UInt8], _ baseType: DType, _ update: LowRankUpdate, _ outputType: DType, threads: Int,
    implementation: LowRankKernel.Implementation = .preferred,
    streamingStoresFrom streamingBytes: Int = LowRankKernel.streamingStoreBytes, offset: Int = 0
) throws -> (bytes: [UInt8], outcome: LowRankKernel.Outcome) {
    let count = update.rows * update.cols * (outputType.byteWidth ?? 4)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count + offset, alignment: 64)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0xAA)
    let output = UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
    let outcome = try base.withUnsafeBytes { source in
        try LowRankKernel.merge(
            base: source.baseAddress!, baseType: baseType, rows: update.rows, cols: update.cols, update: update,
            output: output.baseAddress!, outputType: outputType, threads: threads,
            implementation: implementation, streamingStoresFrom: streamingBytes)
    }
    return (Array(output), outcome)
}

/// A random `rows × cols` base of `baseType` and a random rank-`rank` update of it.
private func randomInputs(
    rows: Int, cols: Int, rank: Int, baseType: DType, seed: UInt64
) throws -> (base: [UInt8], update: LowRankUpdate) {
    (
        try encode(values(rows * cols, seed: seed + 1, magnitude: 2), as: baseType),
        try randomUpdate(rows: rows, cols: cols, rank: rank, seed: seed))
}

private func randomUpdate(rows: Int, cols: Int, rank: Int, seed: UInt64) throws -> LowRankUpdate {
    try LowRankUpdate(
        rows: rows, cols: cols, rank: rank,
        left: values(rows * rank, seed: seed, magnitude: 0.5),
        right: values(rank * cols, seed: seed + 1, magnitude: 0.5))
}

private let shapes: [(rows: Int, cols: Int, rank: Int)] = [
    (1, 1, 1), (1, 17, 1), (5, 3, 2), (6, 16, 16), (7, 13, 3), (13, 37, 5), (50, 100, 8), (97, 131, 17), (49, 48, 64),
]

@Suite struct LowRankKernelTests {
    @Test(arguments: [DType.f32, .f16, .bf16], [DType.f32, .f16, .bf16])
    func matchesSameOrderReferenceExactly(baseType: DType, outputType: DType) throws {
        for (index, shape) in shapes.enumerated() {
            let update = try randomUpdate(rows: shape.rows, cols: shape.cols, rank: shape.rank, seed: UInt64(index))
            let baseBytes = try encode(values(shape.rows * shape.cols, seed: 100 + UInt64(index), magnitude: 2), as: baseType)
            let expected = try reference(base: decode(baseBytes, as: baseType), update: update, outputType: outputType)
            for implementation in implementations {
                let result = try merge(baseBytes, baseType, update, outputType, threads: 2, implementation: implementation)
                #expect(result.bytes == expected, "\(implementation), shape \(shape)")
                #expect(!result.outcome.hasNonFiniteOutput)
            }
        }
    }

    /// Updates of several parts whose scales are not powers of two: every implementation, on any thread
    /// count, writes the bytes of the reference, which multiplies each left value by its part's scale once
    /// before the product. The shapes cover partial tiles, several row tasks and a ragged last task.
    @Test(arguments: [DType.f32, .bf16])
    func scaledPartsMatchReferenceExactly(type: DType) throws {
        let shapes: [(rows: Int, cols: Int, ranks: [Int])] = [(97, 67, [3, 16, 5]), (8, 32, [1, 2]), (150, 40, [7])]
        for (index, shape) in shapes.enumerated() {
            let seed = UInt64(300 + 10 * index)
            let parts = shape.ranks.enumerated().map { offset, rank in
                (scale: Float(offset + 1) * 0.3 - 0.45,
                 left: values(shape.rows * rank, seed: seed + UInt64(2 * offset), magnitude: 0.5),
                 right: values(rank * shape.cols, seed: seed + UInt64(2 * offset + 1), magnitude: 0.5), rank: rank)
            }
            let update = try LowRankUpdate.concatenating(parts, rows: shape.rows, cols: shape.cols)
            let baseBytes = try encode(values(shape.rows * shape.cols, seed: seed + 9, magnitude: 2), as: type)
            let expected = try reference(base: decode(baseBytes, as: type), update: update, outputType: type)
            for implementation in implementations {
                for threads in [1, 3] {
                    let result = try merge(baseBytes, type, update, type, threads: threads, implementation: implementation)
                    #expect(result.bytes == expected, "\(implementation), \(threads) threads, shape \(shape)")
                }
            }
        }
    }

    /// NaN, infinities, subnormals, signed zeros, ties and overflow in base and factors: every implementation
    /// writes the same bytes as the portable one and reports the same finiteness, for every pair of types.
    @Test(arguments: [DType.f32, .f16, .bf16], [DType.f32, .f16, .bf16])
    func implementationsAgreeOnSpecialValues(baseType: DType, outputType: DType) throws {
        let (baseBytes, update) = try specialValueInputs(baseType: baseType)
        let portable = try merge(baseBytes, baseType, update, outputType, threads: 1, implementation: .portable)
        #expect(portable.outcome.hasNonFiniteOutput)
        for implementation in implementations where implementation != .portable {
            let other = try merge(baseBytes, baseType, update, outputType, threads: 2, implementation: implementation)
            #expect(other.bytes == portable.bytes, "\(implementation)")
            #expect(other.outcome == portable.outcome, "\(implementation)")
        }
    }

    /// The AVX-512 kernel against the portable one, on the special values and on random values over
    /// partial tiles. The loops over `implementations` above hold only the portable kernel on a CPU
    /// without AVX-512; this test is skipped there with its reason, so the gap shows in the report.
    @Test(
        .enabled(
            if: LowRankKernel.Implementation.avx512.isAvailable,
            "this CPU has no AVX-512: the AVX-512 merge kernel is not compared with the portable one"),
        arguments: [DType.f32, .f16, .bf16], [DType.f32, .f16, .bf16])
    func avx512MatchesPortable(baseType: DType, outputType: DType) throws {
        let special = try specialValueInputs(baseType: baseType)
        let random = try randomInputs(rows: 97, cols: 131, rank: 17, baseType: baseType, seed: 21)
        for (name, input) in [("special values", special), ("random values", random)] {
            let portable = try merge(input.base, baseType, input.update, outputType, threads: 1, implementation: .portable)
            let avx512 = try merge(input.base, baseType, input.update, outputType, threads: 2, implementation: .avx512)
            #expect(avx512.bytes == portable.bytes, "\(name)")
            #expect(avx512.outcome == portable.outcome, "\(name)")
        }
    }

    /// The AVX-512 kernel's non-temporal stores (for large outputs) write what its ordinary stores write,
    /// on rows that start on a 64-byte boundary and on rows that do not (which fall back to ordinary
    /// stores), with the special values and with random ones.
    @Test(
        .enabled(
            if: LowRankKernel.Implementation.avx512.isAvailable,
            "this CPU has no AVX-512: the AVX-512 merge kernel's streaming stores are not compared"),
        arguments: [DType.f32, .f16, .bf16], [DType.f32, .f16, .bf16])
    func streamingStoresWriteWhatOrdinaryStoresWrite(baseType: DType, outputType: DType) throws {
        let random = try randomInputs(rows: 40, cols: 256, rank: 16, baseType: baseType, seed: 31)
        for (name, input) in [("special values", try specialValueInputs(baseType: baseType)), ("random values", random)] {
            let portable = try merge(input.base, baseType, input.update, outputType, threads: 1, implementation: .portable)
            for offset in [0, 2, 32] {
                let streamed = try merge(
                    input.base, baseType, input.update, outputType, threads: 2, implementation: .avx512,
                    streamingStoresFrom: 0, offset: offset)
                #expect(streamed.bytes == portable.bytes, "\(name), output \(offset) bytes past a 64-byte boundary")
                #expect(streamed.outcome == portable.outcome, "\(name)")
            }
        }
    }

    /// A 19 × 45 base of `baseType` with NaN, infinities, subnormals, signed zeros, ties and values near
    /// the F16 and F32 limits spliced in, and a rank-3 update whose factors overflow and underflow.
    private func specialValueInputs(baseType: DType) throws -> (base: [UInt8], update: LowRankUpdate) {
        let specials: [Float] = [
            .nan, -.nan, .infinity, -.infinity, 0, -0, .leastNonzeroMagnitude, -.leastNormalMagnitude,
            .greatestFiniteMagnitude, 65504, 65520, 1 + 0x1p-8, 1 + 0x1p-11, 3e38, -3e38,
            .leastNormalMagnitude * 0x1.1p-10,
        ]
        let (rows, cols, rank) = (19, 45, 3)
        var base = values(rows * cols, seed: 77, magnitude: 4)
        for (index, special) in specials.enumerated() { base[index * 53 % base.count] = special }
        var left = values(rows * rank, seed: 78, magnitude: 1)
        left[5] = 1e30
        left[20] = .leastNonzeroMagnitude
        let update = try LowRankUpdate(
            rows: rows, cols: cols, rank: rank, left: left, right: values(rank * cols, seed: 79, magnitude: 1e9))
        return (try encode(base, as: baseType), update)
    }

    @Test func f32IsCloseToDoubleReference() throws {
        let (rows, cols, rank) = (37, 75, 24)
        let update = try randomUpdate(rows: rows, cols: cols, rank: rank, seed: 42)
        let base = values(rows * cols, seed: 43, magnitude: 1)
        let result = try decode(merge(encode(base, as: .f32), .f32, update, .f32, threads: 3).bytes, as: .f32)
        let left = update.scaledLeft()
        let right = update.stackedRight()
        var outOfBounds: [(row: Int, column: Int, result: Float, exact: Double)] = []
        for i in 0..<rows {
            for j in 0..<cols {
                var exact = Double(base[i * cols + j])
                var magnitude = abs(exact)
                for k in 0..<rank {
                    let term = Double(left[i * rank + k]) * Double(right[k * cols + j])
                    exact += term
                    magnitude += abs(term)
                }
                if !(abs(Double(result[i * cols + j]) - exact) <= magnitude * Double(rank + 2) * 0x1p-24) {
                    outOfBounds.append((i, j, result[i * cols + j], exact))
                }
            }
        }
        #expect(outOfBounds.isEmpty, "\(outOfBounds.count) elements, first \(outOfBounds.prefix(5))")
    }

    @Test func roundingOnceDiffersFromRoundingTheDeltaFirst() throws {
        // W = 1.0 in BF16 (ulp 2⁻⁷); delta = 2⁻⁸ + 2⁻²⁰, just above half an ulp.
        let delta = Float(sign: .plus, exponent: -8, significand: 1) + Float(sign: .plus, exponent: -20, significand: 1)
        let update = try LowRankUpdate(rows: 1, cols: 1, rank: 1, left: [delta], right: [1])
        let base: [UInt8] = [0x80, 0x3F]
        let merged = try merge(base, .bf16, update, .bf16, threads: 1).bytes
        #expect(merged == [0x81, 0x3F])  // round(1 + δ) = 1 + 2⁻⁷

        // Rounding δ to BF16 first gives exactly 2⁻⁸, and 1 + 2⁻⁸ is a tie that rounds to even, 1.0.
        let deltaFirst = FloatConversion.float(fromBFloat16: FloatConversion.bfloat16(from: delta))
        #expect(FloatConversion.bfloat16(from: 1 + deltaFirst) == 0x3F80)
    }

    @Test(arguments: [DType.f32, .f16, .bf16])
    func threadCountsGiveIdenticalBytes(type: DType) throws {
        let update = try randomUpdate(rows: 203, cols: 517, rank: 19, seed: 9)
        let base = try encode(values(203 * 517, seed: 10, magnitude: 3), as: type)
        let single = try merge(base, type, update, type, threads: 1, implementation: .portable).bytes
        for implementation in implementations {
            for threads in [1, 2, 3, 7] {
                let bytes = try merge(base, type, update, type, threads: threads, implementation: implementation).bytes
                #expect(bytes == single, "\(implementation), threads \(threads)")
            }
        }
    }

    @Test(arguments: [DType.f32, .f16, .bf16])
    func inPlaceEqualsOutOfPlace(type: DType) throws {
        let update = try randomUpdate(rows: 61, cols: 83, rank: 7, seed: 11)
        var buffer = try encode(values(61 * 83, seed: 12, magnitude: 1), as: type)
        let outOfPlace = try merge(buffer, type, update, type, threads: 2).bytes
        let outcome = try buffer.withUnsafeMutableBytes { raw in
            try LowRankKernel.merge(
                base: raw.baseAddress!, baseType: type, rows: 61, cols: 83, update: update,
                output: raw.baseAddress!, outputType: type, threads: 2)
        }
        #expect(buffer == outOfPlace)
        #expect(!outcome.hasNonFiniteOutput)
    }

    @Test func rankZeroOnlyConverts() throws {
        let update = try LowRankUpdate(rows: 3, cols: 5, rank: 0, left: [], right: [])
        let base = values(15, seed: 5, magnitude: 1)
        let result = try merge(encode(base, as: .f32), .f32, update, .bf16, threads: 2).bytes
        #expect(try result == encode(base.map { $0 + 0 }, as: .bf16))
    }

    @Test(arguments: [DType.f32, .f16, .bf16])
    func detectsOverflowToInfinity(type: DType) throws {
        let (rows, cols) = (9, 35)
        let big: Float = type == .f16 ? 300 : 2e19
        var left = [Float](repeating: 0, count: rows * 2)
        left[8 * 2 + 1] = big  // only element (8, 34) overflows, in the scalar tail and the last row
        var right = [Float](repeating: 0, count: 2 * cols)
        right[cols + 34] = big
        let update = try LowRankUpdate(rows: rows, cols: cols, rank: 2, left: left, right: right)
        let base = try encode([Float](repeating: 1, count: rows * cols), as: type)
        for implementation in implementations {
            let result = try merge(base, type, update, type, threads: 3, implementation: implementation)
            #expect(result.outcome.hasNonFiniteOutput, "\(implementation)")
            #expect(try decode(result.bytes, as: type)[rows * cols - 1] == .infinity, "\(implementation)")

            let fine = try merge(
                base, type, try randomUpdate(rows: rows, cols: cols, rank: 2, seed: 1), type, threads: 3,
                implementation: implementation)
            #expect(!fine.outcome.hasNonFiniteOutput, "\(implementation)")
        }
    }

    /// 16-bit bases rounded to BF16 take a path that rounds two full panels at once after one subnormal
    /// check: a subnormal sum (which the BF16 instruction would flush) and a finite F32 sum that rounds to
    /// infinity, in the body of full 32-column pairs, still give the reference bytes and flag.
    @Test(arguments: [DType.f16, .bf16], [false, true])
    func pairedRoundingKeepsSubnormalsAndFlagsRoundingOverflow(baseType: DType, overflows: Bool) throws {
        let (rows, cols) = (9, 64)
        var right = values(cols, seed: 5, magnitude: 0.01)
        right[3] = 0x1.23p-130  // an F32 subnormal that BF16 must round
        right[37] = -0x1p-133
        if overflows { right[40] = 3.3995e38 }  // finite in F32, past the largest BF16 value's rounding bound
        let update = try LowRankUpdate(
            rows: rows, cols: cols, rank: 1, left: [Float](repeating: 1, count: rows), right: right)
        let baseBytes = try encode([Float](repeating: 0, count: rows * cols), as: baseType)
        let expected = try reference(base: decode(baseBytes, as: baseType), update: update, outputType: .bf16)
        for implementation in implementations {
            let result = try merge(baseBytes, baseType, update, .bf16, threads: 1, implementation: implementation)
            #expect(result.bytes == expected, "\(implementation)")
            #expect(result.outcome.hasNonFiniteOutput == overflows, "\(implementation)")
        }
        let subnormal = try decode(expected, as: .bf16)[3]
        #expect(subnormal != 0 && abs(subnormal) < Float.leastNormalMagnitude)
    }

    /// With deltas bounded far below the BF16 range (the usual case), the paired rounding of a 16-bit base
    /// reads NaN and infinity from the F32 sums' classes instead of from the stored values: one base NaN,
    /// +infinity or −infinity in the body of full 32-column pairs is still flagged, and the largest finite
    /// base values plus a delta of 2⁹⁶ (just inside the bound) give the reference bytes without a flag.
    @Test(arguments: [DType.bf16, .f16], [Float?.none, .infinity, -.infinity, .nan])
    func pairedRoundingFlagsNonFiniteBaseValues(baseType: DType, special: Float?) throws {
        let (rows, cols, rank) = (9, 64, 4)
        let largest = baseType == .bf16 ? Float(bitPattern: 0x7F7F_0000) : 65504
        var base = values(rows * cols, seed: 8, magnitude: 1)
        base[2 * cols + 5] = largest
        base[3 * cols + 40] = -largest
        if let special { base[4 * cols + 7] = special }
        var left = values(rows * rank, seed: 9, magnitude: 0.5)
        var right = values(rank * cols, seed: 10, magnitude: 0.5)
        left[2 * rank] = 0x1p48
        right[5] = 0x1p48  // delta (2, 5) ≈ 2⁹⁶ on the largest base value; bound 4 · 2⁴⁸ · 2⁴⁸ = 2⁹⁸
        let update = try LowRankUpdate(rows: rows, cols: cols, rank: rank, left: left, right: right)
        let baseBytes = try encode(base, as: baseType)
        let expected = try reference(base: decode(baseBytes, as: baseType), update: update, outputType: .bf16)
        for implementation in implementations {
            let result = try merge(baseBytes, baseType, update, .bf16, threads: 1, implementation: implementation)
            #expect(result.bytes == expected, "\(implementation)")
            #expect(result.outcome.hasNonFiniteOutput == (special != nil), "\(implementation)")
        }
    }

    @Test func detectsNaNInTheVectorBody() throws {
        var base = [Float](repeating: 1, count: 12 * 32)
        base[7 * 32 + 5] = .nan
        let update = try randomUpdate(rows: 12, cols: 32, rank: 4, seed: 2)
        for implementation in implementations {
            let result = try merge(encode(base, as: .f32), .f32, update, .bf16, threads: 2, implementation: implementation)
            #expect(result.outcome.hasNonFiniteOutput, "\(implementation)")
        }
    }

    @Test func detectsOverflowWhenNarrowing() throws {
        // Finite in F32 but beyond the F16 range.
        let update = try LowRankUpdate(rows: 6, cols: 16, rank: 1, left: [Float](repeating: 1, count: 6),
                                       right: [Float](repeating: 1, count: 16))
        let base = try encode([Float](repeating: 70_000, count: 96), as: .f32)
        for implementation in implementations {
            #expect(try merge(base, .f32, update, .f16, threads: 1, implementation: implementation).outcome.hasNonFiniteOutput)
            #expect(!(try merge(base, .f32, update, .bf16, threads: 1, implementation: implementation).outcome.hasNonFiniteOutput))
        }
    }

    @Test func rejectsInvalidCalls() throws {
        let update = try randomUpdate(rows: 2, cols: 3, rank: 1, seed: 0)
        var buffer = [UInt8](repeating: 0, count: 24)
        buffer.withUnsafeMutableBytes { raw in
            let pointer = raw.baseAddress!
            #expect(throws: LowRankKernel.Failure.unsupportedType(.i32)) {
                try LowRankKernel.merge(base: pointer, baseType: .i32, rows: 2, cols: 3, update: update,
                                        output: pointer, outputType: .i32, threads: 1)
            }
            #expect(throws: LowRankKernel.Failure.shapeMismatch(rows: 3, cols: 2, updateRows: 2, updateCols: 3)) {
                try LowRankKernel.merge(base: pointer, baseType: .f32, rows: 3, cols: 2, update: update,
                                        output: pointer, outputType: .f32, threads: 1)
            }
            #expect(throws: LowRankKernel.Failure.inPlaceTypeMismatch(source: .f32, output: .bf16)) {
                try LowRankKernel.merge(base: pointer, baseType: .f32, rows: 2, cols: 3, update: update,
                                        output: pointer, outputType: .bf16, threads: 1)
            }
            let floats = UnsafePointer(pointer.assumingMemoryBound(to: Float.self))
            #expect(throws: LowRankKernel.Failure.factorCount(expected: 2, actual: 3)) {
                try LowRankKernel.scaleRows(floats, rows: 2, cols: 3, factors: [1, 2, 3],
                                            output: pointer, outputType: .f32, threads: 1)
            }
        }
    }

    @Test func concatenationFoldsScalesAndSumsInOrder() throws {
        let (rows, cols) = (11, 21)
        let a = (scale: Float(2), left: values(rows * 3, seed: 1, magnitude: 1), right: values(3 * cols, seed: 2, magnitude: 1), rank: 3)
        let b = (scale: Float(0.5), left: values(rows * 5, seed: 3, magnitude: 1), right: values(5 * cols, seed: 4, magnitude: 1), rank: 5)
        let update = try LowRankUpdate.concatenating([a, b], rows: rows, cols: cols)
        #expect(update.rank == 8)
        #expect(update.stackedRight() == a.right + b.right)
        let left = update.scaledLeft()
        for row in 0..<rows {
            #expect(Array(left[(row * 8)..<(row * 8 + 3)]) == a.left[(row * 3)..<(row * 3 + 3)].map { $0 * 2 })
            #expect(Array(left[(row * 8 + 3)..<(row * 8 + 8)]) == b.left[(row * 5)..<(row * 5 + 5)].map { $0 * 0.5 })
        }
        #expect(throws: LowRankUpdate.ShapeError.leftCount(expected: 33, actual: 32)) {
            try LowRankUpdate.concatenating([(scale: 1, left: Array(a.left.dropLast()), right: a.right, rank: 3)], rows: rows, cols: cols)
        }
    }

    @Test func updateValidatesSizes() {
        #expect(throws: LowRankUpdate.ShapeError.leftCount(expected: 6, actual: 5)) {
            try LowRankUpdate(rows: 3, cols: 4, rank: 2, left: [Float](repeating: 0, count: 5), right: [Float](repeating: 0, count: 8))
        }
        #expect(throws: LowRankUpdate.ShapeError.rightCount(expected: 8, actual: 9)) {
            try LowRankUpdate(rows: 3, cols: 4, rank: 2, left: [Float](repeating: 0, count: 6), right: [Float](repeating: 0, count: 9))
        }
        #expect(throws: LowRankUpdate.ShapeError.invalidDimensions(rows: -1, cols: 4, rank: 2)) {
            try LowRankUpdate(rows: -1, cols: 4, rank: 2, left: [], right: [])
        }
    }

    @Test func normsAndScalingImplementDoRA() throws {
        let (rows, cols) = (13, 29)
        let matrix = values(rows * cols, seed: 77, magnitude: 2)
        let (rowNorms, columnNorms) = matrix.withUnsafeBufferPointer { buffer in
            (LowRankKernel.rowNorms(buffer.baseAddress!, rows: rows, cols: cols),
             LowRankKernel.columnNorms(buffer.baseAddress!, rows: rows, cols: cols))
        }
        for row in 0..<rows {
            let exact = (0..<cols).reduce(0.0) { $0 + Double(matrix[row * cols + $1]) * Double(matrix[row * cols + $1]) }.squareRoot()
            #expect(abs(Double(rowNorms[row]) - exact) <= exact * 1e-6)
        }
        for column in 0..<cols {
            let exact = (0..<rows).reduce(0.0) { $0 + Double(matrix[$1 * cols + column]) * Double(matrix[$1 * cols + column]) }.squareRoot()
            #expect(abs(Double(columnNorms[column]) - exact) <= exact * 1e-6)
        }

        let rowFactors = values(rows, seed: 5, magnitude: 1.5)
        let columnFactors = values(cols, seed: 6, magnitude: 1.5)
        for type in [DType.f32, .f16, .bf16] {
            var byRow = [UInt8](repeating: 0, count: rows * cols * (type.byteWidth ?? 4))
            var byColumn = byRow
            try matrix.withUnsafeBufferPointer { buffer in
                try byRow.withUnsafeMutableBytes { raw in
                    _ = try LowRankKernel.scaleRows(buffer.baseAddress!, rows: rows, cols: cols, factors: rowFactors,
                                                    output: raw.baseAddress!, outputType: type, threads: 3)
                }
                try byColumn.withUnsafeMutableBytes { raw in
                    _ = try LowRankKernel.scaleColumns(buffer.baseAddress!, rows: rows, cols: cols, factors: columnFactors,
                                                       output: raw.baseAddress!, outputType: type, threads: 2)
                }
            }
            let expectedRows = (0..<(rows * cols)).map { matrix[$0] * rowFactors[$0 / cols] }
            let expectedColumns = (0..<(rows * cols)).map { matrix[$0] * columnFactors[$0 % cols] }
            #expect(try byRow == encode(expectedRows, as: type))
            #expect(try byColumn == encode(expectedColumns, as: type))
        }
    }

    @Test func scalingInPlaceInF32AndReportsNonFinite() throws {
        var matrix: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let outcome = try matrix.withUnsafeMutableBufferPointer { buffer in
            try LowRankKernel.scaleRows(buffer.baseAddress!, rows: 1, cols: 10, factors: [.infinity],
                                        output: UnsafeMutableRawPointer(buffer.baseAddress!), outputType: .f32, threads: 1)
        }
        #expect(outcome.hasNonFiniteOutput)
        #expect(matrix.allSatisfy { $0 == .infinity })
    }
}
