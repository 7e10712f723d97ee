/// A low-rank weight update `ΔW = Σ scaleᵢ · Lᵢ·Rᵢ` in F32, the summed delta of one or more LoRA adapters.
///
/// Each ``Part`` holds a `rows × rankᵢ` left factor and a `rankᵢ × cols` right factor, both row-major, and
/// the scale that multiplies its left factor. For a standard LoRA layer (`W` is `out × in`) the merge
/// engine passes `B` as `left`, `A` as `right` and the adapter's coefficient as `scale`; for transposed
/// layouts (fan_in_fan_out, embedding LoRA) it passes `Aᵀ` and `Bᵀ`. Several adapters on the same tensor
/// form one update of rank `Σ rᵢ` (``concatenating(_:rows:cols:)``), so the weight is read and written once
/// however many adapters are merged.
///
/// The parts keep their own arrays: the AVX-512 kernel scales and packs each task's rows of the left factors
/// as it runs, on every core, instead of the engine copying them first on one (the portable kernel takes one
/// ``scaledLeft()`` copy).
public struct LowRankUpdate: Sendable, Equatable {
    /// Why a set of factors does not form an update.
    public enum ShapeError: Error, Equatable, Sendable {
        /// A dimension or rank is negative, or `rows × rank` / `rank × cols` overflows.
        case invalidDimensions(rows: Int, cols: Int, rank: Int)
        /// `left` does not hold `rows × rank` values.
        case leftCount(expected: Int, actual: Int)
        /// `right` does not hold `rank × cols` values.
        case rightCount(expected: Int, actual: Int)
    }

    /// One term `scale · left · right` of an update.
    public struct Part: Sendable, Equatable {
        /// Multiplies every value of `left` (one F32 multiply each) before it enters the product.
        public let scale: Float
        /// The `rows × rank` factor, row-major.
        public let left: [Float]
        /// The `rank × cols` factor, row-major.
        public let right: [Float]
        /// Inner dimension of this part.
        public let rank: Int
    }

    /// Rows of the updated matrix (and of every left factor).
    public let rows: Int
    /// Columns of the updated matrix (and of every right factor).
    public let cols: Int
    /// Inner dimension of the whole update: the parts' ranks summed.
    public let rank: Int
    /// The terms in summation order: part `i` contributes inner indices `r₀+…+rᵢ₋₁ ..< r₀+…+rᵢ`.
    public let parts: [Part]

    /// Wraps `left` (`rows × rank`) and `right` (`rank × cols`), unscaled, after checking their sizes.
    /// - Throws: ``ShapeError`` when a dimension is negative or a factor has the wrong number of values.
    public init(rows: Int, cols: Int, rank: Int, left: [Float], right: [Float]) throws {
        guard rows >= 0, cols >= 0, rank >= 0 else {
            throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: rank)
        }
        self = try .concatenating([(scale: Float(1), left: left, right: right, rank: rank)], rows: rows, cols: cols)
    }

    private init(rows: Int, cols: Int, rank: Int, parts: [Part]) {
        self.rows = rows
        self.cols = cols
        self.rank = rank
        self.parts = parts
    }

    /// The update of rows `range` alone: each part's left factor cut to those rows (copied), its right
    /// factor and scale kept. Its delta is those rows of this update's delta, to the bit.
    func rows(_ range: Range<Int>) -> LowRankUpdate {
        let range = range.clamped(to: 0 ..< rows)
        return LowRankUpdate(
            rows: range.count, cols: cols, rank: rank,
            parts: parts.map { part in
                Part(
                    scale: part.scale, left: Array(part.left[range.lowerBound * part.rank ..< range.upperBound * part.rank]),
                    right: part.right, rank: part.rank)
            })
    }

    /// One update equal to `Σ scaleᵢ · leftᵢ · rightᵢ`, in the order given, without copying the factors.
    ///
    /// Part `i` contributes inner indices `r₀+…+rᵢ₋₁ ..< r₀+…+rᵢ`, so the kernel sums the first adapter's
    /// terms first. Each left value is multiplied by its scale once in F32 before the product, which is
    /// exact when the scale is a power of two and otherwise can differ from scaling the product by an ulp
    /// of the delta.
    /// - Throws: ``ShapeError`` when a part's factors do not match `rows`, `cols` and its `rank`.
    public static func concatenating(
        _ parts: [(scale: Float, left: [Float], right: [Float], rank: Int)],
        rows: Int, cols: Int
    ) throws -> LowRankUpdate {
        guard rows >= 0, cols >= 0 else {
            throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: 0)
        }
        var totalRank = 0
        for part in parts {
            guard part.rank >= 0 else { throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: part.rank) }
            let (leftCount, leftOverflow) = rows.multipliedReportingOverflow(by: part.rank)
            let (rightCount, rightOverflow) = part.rank.multipliedReportingOverflow(by: cols)
            let (sum, sumOverflow) = totalRank.addingReportingOverflow(part.rank)
            guard !leftOverflow, !rightOverflow, !sumOverflow else {
                throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: part.rank)
            }
            guard part.left.count == leftCount else {
                throw ShapeError.leftCount(expected: leftCount, actual: part.left.count)
            }
            guard part.right.count == rightCount else {
                throw ShapeError.rightCount(expected: rightCount, actual: part.right.count)
            }
            totalRank = sum
        }
        let (_, leftOverflow) = rows.multipliedReportingOverflow(by: totalRank)
        let (_, rightOverflow) = totalRank.multipliedReportingOverflow(by: cols)
        guard !leftOverflow, !rightOverflow else {
            throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: totalRank)
        }
        return LowRankUpdate(
            rows: rows, cols: cols, rank: totalRank,
            parts: parts.map { Part(scale: $0.scale, left: $0.left, right: $0.right, rank: $0.rank) })
    }

    /// The whole update's `rows × rank` left factor, row-major: each part's left multiplied by its scale,
    /// side by side. A copy, for code that wants one matrix (the portable kernel, tests).
    public func scaledLeft() -> [Float] {
        var left = [Float](repeating: 0, count: rows * rank)
        var offset = 0
        left.withUnsafeMutableBufferPointer { left in
            for part in parts {
                part.left.withUnsafeBufferPointer { source in
                    for row in 0..<rows {
                        for k in 0..<part.rank {
                            left[row * rank + offset + k] = part.scale * source[row * part.rank + k]
                        }
                    }
                }
                offset += part.rank
            }
        }
        return left
    }

    /// The whole update's `rank × cols` right factor, row-major: the parts' rights stacked. A copy.
    public func stackedRight() -> [Float] {
        parts.count == 1 ? parts[0].right : parts.flatMap(\.right)
    }
}
