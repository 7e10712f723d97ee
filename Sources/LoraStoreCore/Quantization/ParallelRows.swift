import Dispatch
import Foundation
import Synchronization

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

    /// Calls `body` for every range on at most one worker per core, each with its own state: `makeState`
    /// runs once per worker before its first range and `finish` after its last, so a worker's scratch
    /// memory is allocated once however many ranges it takes.
    static func run<State>(
        _ ranges: [Range<Int>], eachWorkerWith makeState: () -> State, _ body: (State, Range<Int>) -> Void,
        finally finish: (State) -> Void
    ) {
        let workers = min(ranges.count, ProcessInfo.processInfo.activeProcessorCount)
        guard workers > 1 else {
            guard !ranges.isEmpty else { return }
            let state = makeState()
            for range in ranges { body(state, range) }
            finish(state)
            return
        }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(makeState) { makeState in
            withoutActuallyEscaping(body) { body in
                withoutActuallyEscaping(finish) { finish in
                    // Each worker's state is its own; the closures are only called, never shared beyond this call.
                    nonisolated(unsafe) let (makeState, body, finish) = (makeState, body, finish)
                    DispatchQueue.concurrentPerform(iterations: workers) { _ in
                        let state = makeState()
                        while true {
                            let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                            guard index < ranges.count else { break }
                            body(state, ranges[index])
                        }
                        finish(state)
                    }
                }
            }
        }
    }
}
