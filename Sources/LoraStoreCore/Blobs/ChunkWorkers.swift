import Dispatch

/// Runs a codec's per-chunk work on a fixed number of workers.
///
/// Workers take chunks by a fixed rule (worker `w` of `n` takes chunks `w, w + n, …`) and the caller assembles
/// their results in chunk order, so an encoding never depends on the number of threads.
enum ChunkWorkers {
    /// Runs `body` once per worker, concurrently when there is more than one, and returns the results in worker
    /// order.
    static func run<Result: Sendable>(
        workerCount: Int,
        _ body: @Sendable (Int) -> Result
    ) -> [Result] {
        guard workerCount > 1 else { return (0..<workerCount).map(body) }
        let results = ResultSlots<Result>(count: workerCount)
        DispatchQueue.concurrentPerform(iterations: workerCount) { worker in
            results.store(body(worker), at: worker)
        }
        return results.collect()
    }

    /// One result slot per worker; each worker writes only its own slot, and `collect` runs after all of them.
    private final class ResultSlots<Result: Sendable>: @unchecked Sendable {
        private let slots: UnsafeMutableBufferPointer<Result?>

        init(count: Int) {
            slots = .allocate(capacity: count)
            slots.initialize(repeating: nil)
        }

        deinit {
            slots.deinitialize()
            slots.deallocate()
        }

        func store(_ result: Result, at index: Int) {
            slots[index] = result
        }

        func collect() -> [Result] {
            slots.map { $0.unsafelyUnwrapped }
        }
    }
}
