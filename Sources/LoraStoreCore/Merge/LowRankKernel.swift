import Dispatch
#if canImport(Glibc)
import Glibc  // links libm, which `squareRoot()` needs in unoptimised builds
#endif

/// The merge kernel: `W' = round(W + L·R)` for one weight matrix, in one pass over the weight.
///
/// For each element the delta `Σₖ L[i,k]·R[k,j]` is accumulated in F32 from zero in increasing `k`
/// with fused multiply-adds, added to `W` widened to F32, and the sum is rounded once (nearest even) into
/// the output type. The delta is never rounded to the weight's type on its own. The order of every
/// element's arithmetic is fixed, so the output bytes do not depend on the thread count or the blocking.
///
/// The weight is read once and the result written once, tile by tile (4 rows × 16 columns held in
/// registers), with `R` repacked into 16-column panels that stay in L1/L2 while a block of rows streams
/// past. DoRA is left to the caller: merge into an F32 scratch buffer, take ``rowNorms(_:rows:cols:)`` or
/// ``columnNorms(_:rows:cols:)``, then write the result with ``scaleRows(_:rows:cols:factors:output:outputType:threads:)``
/// or ``scaleColumns(_:rows:cols:factors:output:outputType:threads:)``.
public enum LowRankKernel {
    /// What a pass produced, beyond the bytes it wrote.
    public struct Outcome: Sendable, Equatable {
        /// Whether any written value is NaN or infinite (including overflow when narrowing to F16/BF16),
        /// so the caller can refuse the merge and name the tensor.
        public let hasNonFiniteOutput: Bool

        /// Creates an outcome.
        public init(hasNonFiniteOutput: Bool) {
            self.hasNonFiniteOutput = hasNonFiniteOutput
        }
    }

    /// Why a pass was refused before touching any memory.
    public enum Failure: Error, Equatable, Sendable {
        /// The type is not F32, F16 or BF16.
        case unsupportedType(DType)
        /// `rows`/`cols` are negative or do not match the update's shape.
        case shapeMismatch(rows: Int, cols: Int, updateRows: Int, updateCols: Int)
        /// A factor list does not have one value per row (or column).
        case factorCount(expected: Int, actual: Int)
        /// Source and output are the same buffer but their types differ in width.
        case inPlaceTypeMismatch(source: DType, output: DType)
    }

    /// Columns per register tile (two `SIMD8<Float>`).
    static let tileColumns = 16
    /// Rows per register tile.
    static let tileRows = 4
    /// Rows per unit of work handed to a thread.
    static let rowsPerTask = 32
    /// Target size of the slice of the packed `R` that a block of rows sweeps over.
    static let panelBytes = 24 * 1024
    /// Upper bound on the columns of one block, which bounds the delta scratch tile (4 × 512 floats).
    static let maxBlockChunks = 32

    /// Merges `update` into the `rows × cols` row-major matrix at `base` and writes the result to `output`.
    ///
    /// `base` and `output` may be the same buffer (in place) when the types match; otherwise they must not
    /// overlap. `threads` workers (at least one) split the rows; the result is byte-identical for any count.
    /// - Throws: ``Failure`` when a type is not mergeable, the shape does not match `update`, or an
    ///   in-place merge changes the element type.
    /// - Returns: whether any written value is not finite.
    public static func merge(
        base: UnsafeRawPointer, baseType: DType, rows: Int, cols: Int,
        update: LowRankUpdate,
        output: UnsafeMutableRawPointer, outputType: DType,
        threads: Int
    ) throws -> Outcome {
        guard baseType.isMergeable else { throw Failure.unsupportedType(baseType) }
        guard outputType.isMergeable else { throw Failure.unsupportedType(outputType) }
        guard rows >= 0, cols >= 0, update.rows == rows, update.cols == cols else {
            throw Failure.shapeMismatch(rows: rows, cols: cols, updateRows: update.rows, updateCols: update.cols)
        }
        guard base != UnsafeRawPointer(output) || baseType == outputType else {
            throw Failure.inPlaceTypeMismatch(source: baseType, output: outputType)
        }
        if rows == 0 || cols == 0 { return Outcome(hasNonFiniteOutput: false) }
        switch baseType {
        case .f32: return merge(FloatConversion.Float32Lanes.self, base, rows, cols, update, output, outputType, threads)
        case .f16: return merge(FloatConversion.Float16Lanes.self, base, rows, cols, update, output, outputType, threads)
        default: return merge(FloatConversion.BFloat16Lanes.self, base, rows, cols, update, output, outputType, threads)
        }
    }

    /// The Euclidean norm of each row of a `rows × cols` F32 matrix (DoRA's weight norm for `out × in`).
    ///
    /// Squares are accumulated in F32 in a fixed order (16 lane-wise partial sums over the row, then the
    /// tail), so the result is deterministic.
    public static func rowNorms(_ values: UnsafePointer<Float>, rows: Int, cols: Int) -> [Float] {
        guard rows > 0 else { return [] }
        let raw = UnsafeRawPointer(values)
        var norms = [Float](repeating: 0, count: rows)
        for row in 0..<rows {
            let start = row * cols
            var low = SIMD8<Float>()
            var high = SIMD8<Float>()
            var column = 0
            while column + 16 <= cols {
                let a = FloatConversion.Float32Lanes.load(raw, start + column)
                let b = FloatConversion.Float32Lanes.load(raw, start + column + 8)
                low = low.addingProduct(a, a)
                high = high.addingProduct(b, b)
                column += 16
            }
            var tail: Float = 0
            while column < cols {
                let value = values[start + column]
                tail = tail.addingProduct(value, value)
                column += 1
            }
            norms[row] = ((low + high).sum() + tail).squareRoot()
        }
        return norms
    }

    /// The Euclidean norm of each column of a `rows × cols` F32 matrix (DoRA's weight norm for transposed
    /// layouts). Squares are accumulated in F32 in increasing row order, so the result is deterministic.
    public static func columnNorms(_ values: UnsafePointer<Float>, rows: Int, cols: Int) -> [Float] {
        guard cols > 0 else { return [] }
        var sums = [Float](repeating: 0, count: cols)
        sums.withUnsafeMutableBytes { buffer in
            guard let accumulator = buffer.baseAddress else { return }
            let raw = UnsafeRawPointer(values)
            for row in 0..<max(rows, 0) {
                let start = row * cols
                var column = 0
                while column + 8 <= cols {
                    let value = FloatConversion.Float32Lanes.load(raw, start + column)
                    let sum = FloatConversion.Float32Lanes.load(UnsafeRawPointer(accumulator), column)
                    _ = FloatConversion.Float32Lanes.store(sum.addingProduct(value, value), accumulator, column)
                    column += 8
                }
                while column < cols {
                    let value = values[start + column]
                    let sum = accumulator.load(fromByteOffset: column * 4, as: Float.self)
                    accumulator.storeBytes(of: sum.addingProduct(value, value), toByteOffset: column * 4, as: Float.self)
                    column += 1
                }
            }
        }
        return sums.map { $0.squareRoot() }
    }

    /// Writes `values[i,j] · factors[i]` (one F32 multiply, then one rounding) to `output`: DoRA's
    /// `(m / ‖W + ΔW‖) · (W + ΔW)` for `out × in` weights, with `factors = m / rowNorms`.
    ///
    /// `output` may be `values` itself when `outputType` is F32.
    /// - Throws: ``Failure`` when `outputType` is not mergeable, `factors` does not have `rows` values, or
    ///   an in-place call narrows the type.
    public static func scaleRows(
        _ values: UnsafePointer<Float>, rows: Int, cols: Int, factors: [Float],
        output: UnsafeMutableRawPointer, outputType: DType, threads: Int
    ) throws -> Outcome {
        guard factors.count == rows else { throw Failure.factorCount(expected: rows, actual: factors.count) }
        return try scale(values, rows: rows, cols: cols, factors: factors, perRow: true,
                         output: output, outputType: outputType, threads: threads)
    }

    /// Writes `values[i,j] · factors[j]` (one F32 multiply, then one rounding) to `output`: DoRA for
    /// transposed layouts, with `factors = m / columnNorms`.
    ///
    /// `output` may be `values` itself when `outputType` is F32.
    /// - Throws: ``Failure`` when `outputType` is not mergeable, `factors` does not have `cols` values, or
    ///   an in-place call narrows the type.
    public static func scaleColumns(
        _ values: UnsafePointer<Float>, rows: Int, cols: Int, factors: [Float],
        output: UnsafeMutableRawPointer, outputType: DType, threads: Int
    ) throws -> Outcome {
        guard factors.count == cols else { throw Failure.factorCount(expected: cols, actual: factors.count) }
        return try scale(values, rows: rows, cols: cols, factors: factors, perRow: false,
                         output: output, outputType: outputType, threads: threads)
    }
}

// MARK: - Merge

extension LowRankKernel {
    /// Everything a worker needs. Unchecked-sendable because it carries raw pointers: workers only read
    /// through them, except `output`, where each task writes its own rows and no other task's.
    struct MergePlan: @unchecked Sendable {
        let base: UnsafeRawPointer
        let output: UnsafeMutableRawPointer
        let left: UnsafePointer<Float>
        let packed: UnsafePointer<Float>
        let rows: Int
        let cols: Int
        let rank: Int
        let chunkCount: Int
        let chunksPerBlock: Int
    }

    private static func merge<In: FloatConversion.Lanes>(
        _ input: In.Type, _ base: UnsafeRawPointer, _ rows: Int, _ cols: Int, _ update: LowRankUpdate,
        _ output: UnsafeMutableRawPointer, _ outputType: DType, _ threads: Int
    ) -> Outcome {
        switch outputType {
        case .f32: merge(In.self, FloatConversion.Float32Lanes.self, base, rows, cols, update, output, threads)
        case .f16: merge(In.self, FloatConversion.Float16Lanes.self, base, rows, cols, update, output, threads)
        default: merge(In.self, FloatConversion.BFloat16Lanes.self, base, rows, cols, update, output, threads)
        }
    }

    private static func merge<In: FloatConversion.Lanes, Out: FloatConversion.Lanes>(
        _: In.Type, _: Out.Type, _ base: UnsafeRawPointer, _ rows: Int, _ cols: Int, _ update: LowRankUpdate,
        _ output: UnsafeMutableRawPointer, _ threads: Int
    ) -> Outcome {
        let rank = update.rank
        let chunkCount = (cols + tileColumns - 1) / tileColumns
        let packed = packRight(update.right, rank: rank, cols: cols, chunkCount: chunkCount)
        defer { packed.deallocate() }
        let chunkBytes = max(rank, 1) * tileColumns * MemoryLayout<Float>.stride
        let chunksPerBlock = min(max(1, panelBytes / chunkBytes), maxBlockChunks, chunkCount)
        let taskCount = (rows + rowsPerTask - 1) / rowsPerTask
        let nonFinite = update.left.withUnsafeBufferPointer { left -> Bool in
            // An empty `left` (rank 0) has no base address; any valid pointer will do since it is never read.
            let leftPointer = left.baseAddress ?? UnsafePointer(packed)
            let plan = MergePlan(
                base: base, output: output, left: leftPointer, packed: UnsafePointer(packed),
                rows: rows, cols: cols, rank: rank, chunkCount: chunkCount, chunksPerBlock: chunksPerBlock)
            return parallel(tasks: taskCount, threads: threads) { task in
                let start = task * rowsPerTask
                return mergeRows(In.self, Out.self, plan, rowStart: start, rowEnd: min(start + rowsPerTask, rows))
            }
        }
        return Outcome(hasNonFiniteOutput: nonFinite)
    }

    /// Copies `right` (`rank × cols`) into 16-column panels: panel `c` holds `right[k, 16c ..< 16c+16]`
    /// for `k = 0 ..< rank` contiguously, zero-padded past `cols`, so a tile's inner loop reads one
    /// sequential stream instead of `rank` rows a whole matrix row apart.
    private static func packRight(_ right: [Float], rank: Int, cols: Int, chunkCount: Int) -> UnsafeMutablePointer<Float> {
        let count = max(chunkCount * rank * tileColumns, 1)
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: count)
        packed.initialize(repeating: 0, count: count)
        for chunk in 0..<chunkCount {
            let firstColumn = chunk * tileColumns
            let width = min(tileColumns, cols - firstColumn)
            for k in 0..<rank {
                let destination = (chunk * rank + k) * tileColumns
                for lane in 0..<width {
                    packed[destination + lane] = right[k * cols + firstColumn + lane]
                }
            }
        }
        return packed
    }

    /// Merges rows `rowStart ..< rowEnd`, column block by column block, and reports any non-finite output.
    ///
    /// For each tile of four rows the deltas of one column block are computed into a small scratch tile
    /// (L1-resident), then each row of it is added to the weight and stored by ``emitRow``. Keeping the
    /// FMA loop and the type conversions in separate functions lets the compiler inline the SIMD
    /// conversions into a small loop instead of calling them out of line.
    private static func mergeRows<In: FloatConversion.Lanes, Out: FloatConversion.Lanes>(
        _: In.Type, _: Out.Type, _ plan: MergePlan, rowStart: Int, rowEnd: Int
    ) -> Bool {
        let blockColumns = plan.chunksPerBlock * tileColumns
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: tileRows * blockColumns) { scratch in
            guard let delta = scratch.baseAddress else { return false }
            var nonFinite = false
            var blockStart = 0
            while blockStart < plan.chunkCount {
                let blockEnd = min(blockStart + plan.chunksPerBlock, plan.chunkCount)
                let firstColumn = blockStart * tileColumns
                let width = min(blockEnd * tileColumns, plan.cols) - firstColumn
                var row = rowStart
                while row < rowEnd {
                    let tileHeight = min(tileRows, rowEnd - row)
                    for chunk in blockStart..<blockEnd {
                        let tile = delta + (chunk - blockStart) * tileColumns
                        if tileHeight == tileRows {
                            deltaTile4(plan, row: row, chunk: chunk, into: tile, stride: blockColumns)
                        } else {
                            for offset in 0..<tileHeight {
                                deltaTile1(plan, row: row + offset, chunk: chunk, into: tile + offset * blockColumns)
                            }
                        }
                    }
                    for offset in 0..<tileHeight {
                        let index = (row + offset) * plan.cols + firstColumn
                        if emitRow(In.self, Out.self, plan, index: index, count: width,
                                   delta: delta + offset * blockColumns) {
                            nonFinite = true
                        }
                    }
                    row += tileHeight
                }
                blockStart = blockEnd
            }
            return nonFinite
        }
    }

    /// Deltas of four rows × sixteen columns: eight accumulators, each panel row loaded once for eight
    /// FMAs, summed from zero in increasing `k`.
    @inline(__always)
    private static func deltaTile4(_ plan: MergePlan, row: Int, chunk: Int, into tile: UnsafeMutablePointer<Float>, stride: Int) {
        let rank = plan.rank
        let left0 = plan.left + row * rank
        let left1 = left0 + rank
        let left2 = left1 + rank
        let left3 = left2 + rank
        let panel = UnsafeRawPointer(plan.packed + chunk * rank * tileColumns)
        var low0 = SIMD8<Float>(), high0 = SIMD8<Float>()
        var low1 = SIMD8<Float>(), high1 = SIMD8<Float>()
        var low2 = SIMD8<Float>(), high2 = SIMD8<Float>()
        var low3 = SIMD8<Float>(), high3 = SIMD8<Float>()
        for k in 0..<rank {
            let low = FloatConversion.Float32Lanes.load(panel, k &* tileColumns)
            let high = FloatConversion.Float32Lanes.load(panel, k &* tileColumns &+ 8)
            let l0 = SIMD8<Float>(repeating: left0[k])
            low0 = low0.addingProduct(l0, low)
            high0 = high0.addingProduct(l0, high)
            let l1 = SIMD8<Float>(repeating: left1[k])
            low1 = low1.addingProduct(l1, low)
            high1 = high1.addingProduct(l1, high)
            let l2 = SIMD8<Float>(repeating: left2[k])
            low2 = low2.addingProduct(l2, low)
            high2 = high2.addingProduct(l2, high)
            let l3 = SIMD8<Float>(repeating: left3[k])
            low3 = low3.addingProduct(l3, low)
            high3 = high3.addingProduct(l3, high)
        }
        let raw = UnsafeMutableRawPointer(tile)
        _ = FloatConversion.Float32Lanes.store(low0, raw, 0)
        _ = FloatConversion.Float32Lanes.store(high0, raw, 8)
        _ = FloatConversion.Float32Lanes.store(low1, raw, stride)
        _ = FloatConversion.Float32Lanes.store(high1, raw, stride &+ 8)
        _ = FloatConversion.Float32Lanes.store(low2, raw, 2 &* stride)
        _ = FloatConversion.Float32Lanes.store(high2, raw, 2 &* stride &+ 8)
        _ = FloatConversion.Float32Lanes.store(low3, raw, 3 &* stride)
        _ = FloatConversion.Float32Lanes.store(high3, raw, 3 &* stride &+ 8)
    }

    /// Deltas of one row × sixteen columns, for the last rows of a task (same arithmetic per element).
    @inline(__always)
    private static func deltaTile1(_ plan: MergePlan, row: Int, chunk: Int, into tile: UnsafeMutablePointer<Float>) {
        let rank = plan.rank
        let left0 = plan.left + row * rank
        let panel = UnsafeRawPointer(plan.packed + chunk * rank * tileColumns)
        var low0 = SIMD8<Float>(), high0 = SIMD8<Float>()
        for k in 0..<rank {
            let l0 = SIMD8<Float>(repeating: left0[k])
            low0 = low0.addingProduct(l0, FloatConversion.Float32Lanes.load(panel, k &* tileColumns))
            high0 = high0.addingProduct(l0, FloatConversion.Float32Lanes.load(panel, k &* tileColumns &+ 8))
        }
        _ = FloatConversion.Float32Lanes.store(low0, UnsafeMutableRawPointer(tile), 0)
        _ = FloatConversion.Float32Lanes.store(high0, UnsafeMutableRawPointer(tile), 8)
    }

    /// Adds `count` deltas to the weight elements starting at `index`, rounds each sum once into the
    /// output type and stores it; returns whether any stored value is not finite (`x - x` is zero for
    /// finite `x` and NaN otherwise, folded into one accumulator and tested once).
    @inline(never)
    private static func emitRow<In: FloatConversion.Lanes, Out: FloatConversion.Lanes>(
        _: In.Type, _: Out.Type, _ plan: MergePlan, index: Int, count: Int, delta: UnsafePointer<Float>
    ) -> Bool {
        let deltaRaw = UnsafeRawPointer(delta)
        var check = SIMD8<Float>()
        var offset = 0
        while offset &+ 8 <= count {
            let sum = In.load(plan.base, index &+ offset) + FloatConversion.Float32Lanes.load(deltaRaw, offset)
            let stored = Out.store(sum, plan.output, index &+ offset)
            check += stored - stored
            offset &+= 8
        }
        var checkScalar: Float = 0
        while offset < count {
            let stored = Out.storeScalar(In.loadScalar(plan.base, index &+ offset) + delta[offset], plan.output, index &+ offset)
            checkScalar += stored - stored
            offset &+= 1
        }
        return check.sum().isNaN || checkScalar.isNaN
    }
}

// MARK: - Scaling and threads

extension LowRankKernel {
    private static func scale(
        _ values: UnsafePointer<Float>, rows: Int, cols: Int, factors: [Float], perRow: Bool,
        output: UnsafeMutableRawPointer, outputType: DType, threads: Int
    ) throws -> Outcome {
        guard outputType.isMergeable else { throw Failure.unsupportedType(outputType) }
        guard rows >= 0, cols >= 0 else {
            throw Failure.shapeMismatch(rows: rows, cols: cols, updateRows: rows, updateCols: cols)
        }
        guard UnsafeRawPointer(values) != UnsafeRawPointer(output) || outputType == .f32 else {
            throw Failure.inPlaceTypeMismatch(source: .f32, output: outputType)
        }
        if rows == 0 || cols == 0 { return Outcome(hasNonFiniteOutput: false) }
        let nonFinite = factors.withUnsafeBufferPointer { factorBuffer -> Bool in
            guard let factorPointer = factorBuffer.baseAddress else { return false }
            let source = UnsafeRawPointer(values)
            return switch outputType {
            case .f32: scale(FloatConversion.Float32Lanes.self, source, rows, cols, factorPointer, perRow, output, threads)
            case .f16: scale(FloatConversion.Float16Lanes.self, source, rows, cols, factorPointer, perRow, output, threads)
            default: scale(FloatConversion.BFloat16Lanes.self, source, rows, cols, factorPointer, perRow, output, threads)
            }
        }
        return Outcome(hasNonFiniteOutput: nonFinite)
    }

    /// The buffers of a scaling pass; unchecked-sendable for the same reason as ``MergePlan``.
    struct ScalePlan: @unchecked Sendable {
        let source: UnsafeRawPointer
        let factors: UnsafePointer<Float>
        let output: UnsafeMutableRawPointer
    }

    /// One flag per worker; each worker writes only its own slot.
    private struct WorkerFlags: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<Bool>
    }

    private static func scale<Out: FloatConversion.Lanes>(
        _: Out.Type, _ source: UnsafeRawPointer, _ rows: Int, _ cols: Int, _ factors: UnsafePointer<Float>,
        _ perRow: Bool, _ output: UnsafeMutableRawPointer, _ threads: Int
    ) -> Bool {
        let taskCount = (rows + rowsPerTask - 1) / rowsPerTask
        let plan = ScalePlan(source: source, factors: factors, output: output)
        return parallel(tasks: taskCount, threads: threads) { task in
            let source = plan.source
            let factors = plan.factors
            let factorSource = UnsafeRawPointer(factors)
            let output = plan.output
            var check = SIMD8<Float>()
            var checkScalar: Float = 0
            for row in (task * rowsPerTask)..<min(task * rowsPerTask + rowsPerTask, rows) {
                let start = row * cols
                let rowFactor = SIMD8<Float>(repeating: factors[row])
                var column = 0
                while column + 8 <= cols {
                    let factor = perRow ? rowFactor : FloatConversion.Float32Lanes.load(factorSource, column)
                    let value = FloatConversion.Float32Lanes.load(source, start + column) * factor
                    let stored = Out.store(value, output, start + column)
                    check += stored - stored
                    column += 8
                }
                while column < cols {
                    let factor = perRow ? factors[row] : factors[column]
                    let value = FloatConversion.Float32Lanes.loadScalar(source, start + column) * factor
                    let stored = Out.storeScalar(value, output, start + column)
                    checkScalar += stored - stored
                    column += 1
                }
            }
            return check.sum().isNaN || checkScalar.isNaN
        }
    }

    /// Runs `body` for tasks `0 ..< tasks` on up to `threads` workers (worker `w` takes tasks `w`,
    /// `w + workers`, …) and returns whether any call returned `true`. Each task writes disjoint memory,
    /// so the assignment of tasks to workers cannot change the result.
    private static func parallel(tasks: Int, threads: Int, _ body: @Sendable (Int) -> Bool) -> Bool {
        let workers = max(1, min(threads, tasks))
        if workers == 1 {
            var any = false
            for task in 0..<tasks where body(task) { any = true }
            return any
        }
        let flags = WorkerFlags(buffer: .allocate(capacity: workers))
        flags.buffer.initialize(repeating: false)
        defer { flags.buffer.deallocate() }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var any = false
            var task = worker
            while task < tasks {
                if body(task) { any = true }
                task += workers
            }
            flags.buffer[worker] = any
        }
        return flags.buffer.contains(true)
    }
}
