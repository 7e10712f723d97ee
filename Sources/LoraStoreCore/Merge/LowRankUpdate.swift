/// A low-rank weight update `ΔW = L·R` in F32, the summed delta of one or more LoRA adapters.
///
/// `left` is `rows × rank` and `right` is `rank × cols`, both row-major. For a standard LoRA layer
/// (`W` is `out × in`) the merge engine passes `s·B` as `left` and `A` as `right`; for transposed layouts
/// (fan_in_fan_out, embedding LoRA) it passes `Aᵀ` as `left` and `Bᵀ` as `right`. Several adapters on the
/// same tensor become one update of rank `Σ rᵢ` (``concatenating(_:rows:cols:)``), so the weight is read
/// and written once however many adapters are merged.
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

    /// Rows of the updated matrix (and of `left`).
    public let rows: Int
    /// Columns of the updated matrix (and of `right`).
    public let cols: Int
    /// Inner dimension shared by `left` and `right`.
    public let rank: Int
    /// The `rows × rank` factor, row-major, with any scaling already folded in.
    public let left: [Float]
    /// The `rank × cols` factor, row-major.
    public let right: [Float]

    /// Wraps `left` (`rows × rank`) and `right` (`rank × cols`) after checking their sizes.
    /// - Throws: ``ShapeError`` when a dimension is negative or a factor has the wrong number of values.
    public init(rows: Int, cols: Int, rank: Int, left: [Float], right: [Float]) throws {
        guard rows >= 0, cols >= 0, rank >= 0 else {
            throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: rank)
        }
        let (leftCount, leftOverflow) = rows.multipliedReportingOverflow(by: rank)
        let (rightCount, rightOverflow) = rank.multipliedReportingOverflow(by: cols)
        guard !leftOverflow, !rightOverflow else {
            throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: rank)
        }
        guard left.count == leftCount else { throw ShapeError.leftCount(expected: leftCount, actual: left.count) }
        guard right.count == rightCount else { throw ShapeError.rightCount(expected: rightCount, actual: right.count) }
        self.rows = rows
        self.cols = cols
        self.rank = rank
        self.left = left
        self.right = right
    }

    /// One update equal to `Σ scaleᵢ · leftᵢ · rightᵢ`: the lefts side by side (each multiplied by its
    /// scale, rounded once in F32) and the rights stacked, in the order given.
    ///
    /// Part `i` contributes inner indices `r₀+…+rᵢ₋₁ ..< r₀+…+rᵢ`, so the kernel sums the first adapter's
    /// terms first. Folding the scale into `left` is exact when the scale is a power of two; otherwise it
    /// can differ from scaling the product by an ulp of the delta.
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
        let (leftTotal, overflow) = rows.multipliedReportingOverflow(by: totalRank)
        guard !overflow else { throw ShapeError.invalidDimensions(rows: rows, cols: cols, rank: totalRank) }

        if parts.count == 1, let part = parts.first {
            // One adapter: its right factor is used as it is, without a copy.
            return try LowRankUpdate(
                rows: rows, cols: cols, rank: part.rank, left: part.left.map { part.scale * $0 }, right: part.right)
        }
        var left = [Float](repeating: 0, count: leftTotal)
        var right: [Float] = []
        right.reserveCapacity(totalRank * cols)
        var offset = 0
        left.withUnsafeMutableBufferPointer { left in
            for part in parts {
                part.left.withUnsafeBufferPointer { source in
                    for row in 0..<rows {
                        for k in 0..<part.rank {
                            left[row * totalRank + offset + k] = part.scale * source[row * part.rank + k]
                        }
                    }
                }
                right.append(contentsOf: part.right)
                offset += part.rank
            }
        }
        return try LowRankUpdate(rows: rows, cols: cols, rank: totalRank, left: left, right: right)
    }
}
