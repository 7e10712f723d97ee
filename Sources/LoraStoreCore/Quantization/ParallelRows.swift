import Dispatch

/// Splits the rows of a matrix into consecutive ranges and processes them on all cores.
///
/// Each range writes only its own rows (or its own slot of a per-range result), so results are identical
/// whatever the scheduling.
enum ParallelRows {
    /// Values handled by one task; large enough to amortise dispatch, small enough to balance two or more
    /// cores on a single weight.
    static let valuesPerTask = 1 << 16

    /// Consecutive row ranges covering `0 ..< rows`, each of about ``valuesPerTask`` values.
    static func ranges(rows: Int, valuesPerRow: Int) -> [Range<Int>] {
        guard rows > 0 else { return [] }
        let rowsPerTask = max(1, valuesPerTask / max(1, valuesPerRow))
        return stride(from: 0, to: rows, by: rowsPerTask).map { $0 ..< min(rows, $0 + rowsPerTask) }
    }

    /// Calls `body(index, ranges[index])` for every range, concurrently when there is more than one.
    static func run(_ ranges: [Range<Int>], _ body: (Int, Range<Int>) -> Void) {
        if ranges.count <= 1 {
            for (index, range) in ranges.enumerated() { body(index, range) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
                body(index, ranges[index])
            }
        }
    }
}
