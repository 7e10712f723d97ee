import Dispatch
import Synchronization

/// Hands tasks `0 ..< tasks` to a fixed number of workers, each task to whichever worker asks first: a
/// worker whose core runs slower (another process, or on a virtual machine a busy neighbour) takes fewer
/// instead of holding up the others at the end. Callers make each task write disjoint memory, so which
/// worker runs a task cannot change a result.
enum WorkQueue {
    /// Runs `worker(index, next)` once per worker, on `workers` threads (inline when there is one);
    /// `next()` gives the next task not yet taken, nil once all are. Returns when every worker has.
    static func run(tasks: Int, workers: Int, _ worker: (_ index: Int, _ next: () -> Int?) -> Void) {
        let next = Atomic<Int>(0)
        let take = { @Sendable () -> Int? in
            let task = next.wrappingAdd(1, ordering: .relaxed).oldValue
            return task < tasks ? task : nil
        }
        guard workers > 1 else {
            worker(0, take)
            return
        }
        withoutActuallyEscaping(worker) { worker in
            // Each worker runs on its own thread; what it shares with the others is the caller's to keep apart.
            nonisolated(unsafe) let worker = worker
            DispatchQueue.concurrentPerform(iterations: workers) { index in
                worker(index, take)
            }
        }
    }
}
