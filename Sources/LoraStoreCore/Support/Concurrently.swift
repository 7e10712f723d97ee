import Dispatch

/// Runs `first` and `second` at the same time on two cores and returns both results. When either throws,
/// the error of `first` is rethrown, else that of `second`, after both have finished.
///
/// For two independent passes over the same memory, such as hashing a tensor while writing it elsewhere.
/// The closures run on different threads and are not checked for sendability: they must not touch the
/// same mutable state, and each must only use what no other thread uses meanwhile.
func concurrently<First, Second>(
    _ first: () throws -> First, _ second: () throws -> Second
) throws -> (First, Second) {
    // Each iteration writes only its own result, and both are read after `concurrentPerform` returns.
    nonisolated(unsafe) var firstResult: Result<First, any Error>?
    nonisolated(unsafe) var secondResult: Result<Second, any Error>?
    withoutActuallyEscaping(first) { first in
        withoutActuallyEscaping(second) { second in
            nonisolated(unsafe) let (first, second) = (first, second)
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    firstResult = Result { try first() }
                } else {
                    secondResult = Result { try second() }
                }
            }
        }
    }
    guard let firstResult, let secondResult else { preconditionFailure("concurrentPerform skipped an iteration") }
    return (try firstResult.get(), try secondResult.get())
}
