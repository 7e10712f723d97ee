import Dispatch
import Synchronization
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
/// The weight is read once and the result written once, tile by tile (6 rows × 16 columns held in
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
        /// The requested implementation does not run on this CPU.
        case unavailable(Implementation)
    }

    /// Columns per register tile (two `SIMD8<Float>`).
    static let tileColumns = 16
    /// Rows per register tile.
    static let tileRows = 6
    /// Rows per unit of work handed to a thread.
    static let rowsPerTask = 48
    /// Target size of the slice of the packed `R` that a block of rows sweeps over.
    static let panelBytes = 24 * 1024

    /// Merges `update` into the `rows × cols` row-major matrix at `base` and writes the result to `output`.
    ///
    /// `base` and `output` may be the same buffer (in place) when the types match; otherwise they must not
    /// overlap. `threads` workers (at least one) split the rows; the result is byte-identical for any count
    /// and either ``Implementation``.
    /// - Throws: ``Failure`` when a type is not mergeable, the shape does not match `update`, an in-place
    ///   merge changes the element type, or `implementation` does not run on this CPU.
    /// - Returns: whether any written value is not finite.
    public static func merge(
        base: UnsafeRawPointer, baseType: DType, rows: Int, cols: Int,
        update: LowRankUpdate,
        output: UnsafeMutableRawPointer, outputType: DType,
        threads: Int, implementation: Implementation = .preferred
    ) throws -> Outcome {
        try merge(
            base: base, baseType: baseType, rows: rows, cols: cols, update: update, output: output,
            outputType: outputType, threads: threads, implementation: implementation,
            streamingStoresFrom: streamingStoreBytes)
    }

    /// ``merge(base:baseType:rows:cols:update:output:outputType:threads:implementation:)`` with the output
    /// size from which the AVX-512 kernel writes with non-temporal stores (``streamingStoreBytes``; tests
    /// lower it to reach those stores with small matrices).
    static func merge(
        base: UnsafeRawPointer, baseType: DType, rows: Int, cols: Int,
        update: LowRankUpdate,
        output: UnsafeMutableRawPointer, outputType: DType,
        threads: Int, implementation: Implementation, streamingStoresFrom streamingBytes: Int
    ) throws -> Outcome {
        guard implementation.isAvailable else { throw Failure.unavailable(implementation) }
        guard baseType.isMergeable else { throw Failure.unsupportedType(baseType) }
        guard outputType.isMergeable else { throw Failure.unsupportedType(outputType) }
        guard rows >= 0, cols >= 0, update.rows == rows, update.cols == cols else {
            throw Failure.shapeMismatch(rows: rows, cols: cols, updateRows: update.rows, updateCols: update.cols)
        }
        guard base != UnsafeRawPointer(output) || baseType == outputType else {
            throw Failure.inPlaceTypeMismatch(source: baseType, output: outputType)
        }
        if rows == 0 || cols == 0 { return Outcome(hasNonFiniteOutput: false) }
        if implementation == .avx512 {
            let streaming = rows * cols * (outputType.byteWidth ?? 4) >= streamingBytes
            return mergeAVX512(base, baseType, rows, cols, update, output, outputType, threads, streaming: streaming)
        }
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
    /// Everything a worker of the portable kernel needs. Unchecked-sendable because it carries raw
    /// pointers: workers only read through them, except `output`, where each task writes its own rows and
    /// no other task's.
    struct MergePlan: @unchecked Sendable {
        let base: UnsafeRawPointer
        let output: UnsafeMutableRawPointer
        /// The update's scaled left factor, `rows × rank` row-major (``LowRankUpdate/scaledLeft()``).
        let left: UnsafePointer<Float>
        let packed: UnsafePointer<Float>
        let rows: Int
        let cols: Int
        let rank: Int
        let chunkCount: Int
        let chunksPerBlock: Int
    }

    /// The right factor packed into 16-column panels (``packRight(_:chunkCount:)``), and how many of them a
    /// block of rows sweeps.
    struct Panels {
        let packed: UnsafePointer<Float>
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
        let left = update.scaledLeft()
        return withPanels(update, panelBytes: panelBytes) { panels in
            let nonFinite = left.withUnsafeBufferPointer { left -> Bool in
                // An empty `left` (rank 0) has no base address; any valid pointer will do since it is never read.
                let plan = MergePlan(
                    base: base, output: output, left: left.baseAddress ?? panels.packed, packed: panels.packed,
                    rows: rows, cols: cols, rank: update.rank, chunkCount: panels.chunkCount,
                    chunksPerBlock: panels.chunksPerBlock)
                return parallelRows(rows, threads: threads) { _, rowStart, rowEnd in
                    mergeRows(In.self, Out.self, plan, rowStart: rowStart, rowEnd: rowEnd)
                }
            }
            return Outcome(hasNonFiniteOutput: nonFinite)
        }
    }

    /// Packs `update`'s right factor into panels for the duration of `body`, with blocks of about
    /// `panelBytes` of panels.
    static func withPanels<Result>(
        _ update: LowRankUpdate, panelBytes: Int, _ body: (Panels) -> Result
    ) -> Result {
        let chunkCount = (update.cols + tileColumns - 1) / tileColumns
        let packed = packRight(update, chunkCount: chunkCount)
        defer { packed.deallocate() }
        let chunkBytes = max(update.rank, 1) * tileColumns * MemoryLayout<Float>.stride
        let chunksPerBlock = min(max(1, panelBytes / chunkBytes), chunkCount)
        return body(Panels(packed: UnsafePointer(packed), chunkCount: chunkCount, chunksPerBlock: chunksPerBlock))
    }

    /// The row tasks of a pass over `rows` rows: ``rowsPerTask`` rows each, the last one shorter.
    static func taskCount(rows: Int) -> Int {
        (rows + rowsPerTask - 1) / rowsPerTask
    }

    /// The workers a pass of `tasks` tasks runs on with `threads` threads: at most one per task.
    static func workerCount(tasks: Int, threads: Int) -> Int {
        max(1, min(threads, tasks))
    }

    /// Splits `rows` into tasks of ``rowsPerTask`` and runs them on ``workerCount(tasks:threads:)`` workers;
    /// `body` gets the worker's index, so it can use that worker's scratch memory.
    static func parallelRows(
        _ rows: Int, threads: Int, _ body: @Sendable (_ worker: Int, _ rowStart: Int, _ rowEnd: Int) -> Bool
    ) -> Bool {
        parallel(tasks: taskCount(rows: rows), threads: threads) { worker, task in
            let start = task * rowsPerTask
            return body(worker, start, min(start + rowsPerTask, rows))
        }
    }

    /// Copies the update's right factor (the parts' rights stacked, `rank × cols`) into 16-column panels:
    /// panel `c` holds `right[k, 16c ..< 16c+16]` for `k = 0 ..< rank` contiguously, zero-padded past
    /// `cols`, so a tile's inner loop reads one sequential stream instead of `rank` rows a whole matrix row
    /// apart.
    private static func packRight(_ update: LowRankUpdate, chunkCount: Int) -> UnsafeMutablePointer<Float> {
        let cols = update.cols
        let count = max(chunkCount * update.rank * tileColumns, 1)
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: count)
        var firstK = 0
        for part in update.parts {
            part.right.withUnsafeBufferPointer { source in
                guard let source = source.baseAddress else { return }
                for chunk in 0..<chunkCount {
                    let firstColumn = chunk * tileColumns
                    let width = min(tileColumns, cols - firstColumn)
                    for k in 0..<part.rank {
                        let panelRow = packed + (chunk * update.rank + firstK + k) * tileColumns
                        panelRow.initialize(from: source + k * cols + firstColumn, count: width)
                        (panelRow + width).initialize(repeating: 0, count: tileColumns - width)
                    }
                }
            }
            firstK += part.rank
        }
        return packed
    }

    /// Merges rows `rowStart ..< rowEnd`, column block by column block, and reports any non-finite output.
    ///
    /// Full six-row tiles of full sixteen-column chunks go through ``fusedTile``, which adds the deltas
    /// straight from registers, so the weight loads of one tile overlap the FMAs of the next. The ragged
    /// edges (last chunk when `cols % 16 != 0`, last rows of the matrix) compute the same deltas into a
    /// small scratch tile and finish through ``emitRow``.
    private static func mergeRows<In: FloatConversion.Lanes, Out: FloatConversion.Lanes>(
        _: In.Type, _: Out.Type, _ plan: MergePlan, rowStart: Int, rowEnd: Int
    ) -> Bool {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: tileRows * tileColumns) { scratch in
            guard let tile = scratch.baseAddress else { return false }
            var check = SIMD8<Float>()
            var nonFinite = false
            let fullChunks = plan.cols / tileColumns
            var blockStart = 0
            while blockStart < plan.chunkCount {
                let blockEnd = min(blockStart + plan.chunksPerBlock, plan.chunkCount)
                var row = rowStart
                while row < rowEnd {
                    let tileHeight = min(tileRows, rowEnd - row)
                    for chunk in blockStart..<blockEnd {
                        let index = row * plan.cols + chunk * tileColumns
                        let width = min(tileColumns, plan.cols - chunk * tileColumns)
                        if tileHeight == tileRows {
                            let delta = deltaTile(plan, row: row, chunk: chunk)
                            if chunk < fullChunks {
                                fusedTile(In.self, Out.self, plan, index: index, delta, check: &check)
                                continue
                            }
                            delta.store(to: tile)
                        } else {
                            for offset in 0..<tileHeight {
                                deltaRow(plan, row: row + offset, chunk: chunk, into: tile + offset * tileColumns)
                            }
                        }
                        for offset in 0..<tileHeight where emitRow(
                            In.self, Out.self, plan, index: index + offset * plan.cols, count: width,
                            delta: tile + offset * tileColumns) {
                            nonFinite = true
                        }
                    }
                    row += tileHeight
                }
                blockStart = blockEnd
            }
            return nonFinite || check.sum().isNaN
        }
    }

    /// The deltas of a six-row × sixteen-column tile, held in twelve registers.
    struct DeltaTile {
        var low0 = SIMD8<Float>(), high0 = SIMD8<Float>()
        var low1 = SIMD8<Float>(), high1 = SIMD8<Float>()
        var low2 = SIMD8<Float>(), high2 = SIMD8<Float>()
        var low3 = SIMD8<Float>(), high3 = SIMD8<Float>()
        var low4 = SIMD8<Float>(), high4 = SIMD8<Float>()
        var low5 = SIMD8<Float>(), high5 = SIMD8<Float>()

        /// Writes the tile row-major with rows sixteen floats apart.
        @inline(__always)
        func store(to tile: UnsafeMutablePointer<Float>) {
            let raw = UnsafeMutableRawPointer(tile)
            _ = FloatConversion.Float32Lanes.store(low0, raw, 0)
            _ = FloatConversion.Float32Lanes.store(high0, raw, 8)
            _ = FloatConversion.Float32Lanes.store(low1, raw, 16)
            _ = FloatConversion.Float32Lanes.store(high1, raw, 24)
            _ = FloatConversion.Float32Lanes.store(low2, raw, 32)
            _ = FloatConversion.Float32Lanes.store(high2, raw, 40)
            _ = FloatConversion.Float32Lanes.store(low3, raw, 48)
            _ = FloatConversion.Float32Lanes.store(high3, raw, 56)
            _ = FloatConversion.Float32Lanes.store(low4, raw, 64)
            _ = FloatConversion.Float32Lanes.store(high4, raw, 72)
            _ = FloatConversion.Float32Lanes.store(low5, raw, 80)
            _ = FloatConversion.Float32Lanes.store(high5, raw, 88)
        }
    }

    /// Deltas of six rows × sixteen columns: twelve accumulators (enough independent FMA chains to hide
    /// the FMA latency), each panel row loaded once for twelve FMAs, summed from zero in increasing `k`.
    @inline(__always)
    private static func deltaTile(_ plan: MergePlan, row: Int, chunk: Int) -> DeltaTile {
        let rank = plan.rank
        let left0 = plan.left + row * rank
        let left1 = left0 + rank
        let left2 = left1 + rank
        let left3 = left2 + rank
        let left4 = left3 + rank
        let left5 = left4 + rank
        let panel = UnsafeRawPointer(plan.packed + chunk * rank * tileColumns)
        var t = DeltaTile()
        for k in 0..<rank {
            let low = FloatConversion.Float32Lanes.load(panel, k &* tileColumns)
            let high = FloatConversion.Float32Lanes.load(panel, k &* tileColumns &+ 8)
            let l0 = SIMD8<Float>(repeating: left0[k])
            t.low0 = t.low0.addingProduct(l0, low)
            t.high0 = t.high0.addingProduct(l0, high)
            let l1 = SIMD8<Float>(repeating: left1[k])
            t.low1 = t.low1.addingProduct(l1, low)
            t.high1 = t.high1.addingProduct(l1, high)
            let l2 = SIMD8<Float>(repeating: left2[k])
            t.low2 = t.low2.addingProduct(l2, low)
            t.high2 = t.high2.addingProduct(l2, high)
            let l3 = SIMD8<Float>(repeating: left3[k])
            t.low3 = t.low3.addingProduct(l3, low)
            t.high3 = t.high3.addingProduct(l3, high)
            let l4 = SIMD8<Float>(repeating: left4[k])
            t.low4 = t.low4.addingProduct(l4, low)
            t.high4 = t.high4.addingProduct(l4, high)
            let l5 = SIMD8<Float>(repeating: left5[k])
            t.low5 = t.low5.addingProduct(l5, low)
            t.high5 = t.high5.addingProduct(l5, high)
        }
        return t
    }

    /// Deltas of one row × sixteen columns, for the last rows of the matrix (same arithmetic per element).
    @inline(__always)
    private static func deltaRow(_ plan: MergePlan, row: Int, chunk: Int, into tile: UnsafeMutablePointer<Float>) {
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

    /// Adds a full tile's deltas to the weight (rows `plan.cols` apart from `index`), rounds each sum once
    /// into the output type, stores it, and folds `stored - stored` (zero when finite, NaN otherwise) into
    /// `check`.
    @inline(__always)
    private static func fusedTile<In: FloatConversion.Lanes, Out: FloatConversion.Lanes>(
        _: In.Type, _: Out.Type, _ plan: MergePlan, index: Int, _ t: DeltaTile, check: inout SIMD8<Float>
    ) {
        @inline(__always)
        func emit(_ at: Int, _ delta: SIMD8<Float>) -> SIMD8<Float> {
            let stored = Out.store(In.load(plan.base, at) + delta, plan.output, at)
            return stored - stored
        }
        let c = plan.cols
        var sum = emit(index, t.low0) + emit(index &+ 8, t.high0)
        sum += emit(index &+ c, t.low1) + emit(index &+ c &+ 8, t.high1)
        sum += emit(index &+ 2 &* c, t.low2) + emit(index &+ 2 &* c &+ 8, t.high2)
        sum += emit(index &+ 3 &* c, t.low3) + emit(index &+ 3 &* c &+ 8, t.high3)
        sum += emit(index &+ 4 &* c, t.low4) + emit(index &+ 4 &* c &+ 8, t.high4)
        sum += emit(index &+ 5 &* c, t.low5) + emit(index &+ 5 &* c &+ 8, t.high5)
        check += sum
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
        let plan = ScalePlan(source: source, factors: factors, output: output)
        return parallel(tasks: taskCount(rows: rows), threads: threads) { _, task in
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

    /// Runs `body(worker, task)` for tasks `0 ..< tasks` on up to `threads` workers (numbered from 0, tasks
    /// handed out by a ``WorkQueue``) and returns whether any call returned `true`. Each task writes disjoint
    /// memory, so which worker runs a task cannot change the result.
    private static func parallel(tasks: Int, threads: Int, _ body: @Sendable (_ worker: Int, _ task: Int) -> Bool) -> Bool {
        let workers = workerCount(tasks: tasks, threads: threads)
        let flags = WorkerFlags(buffer: .allocate(capacity: workers))
        flags.buffer.initialize(repeating: false)
        defer { flags.buffer.deallocate() }
        WorkQueue.run(tasks: tasks, workers: workers) { worker, next in
            var any = false
            while let task = next() {
                if body(worker, task) { any = true }
            }
            flags.buffer[worker] = any
        }
        return flags.buffer.contains(true)
    }
}
