import Foundation

/// A second stage for a loop: runs the work it is given one item at a time, in order, on a thread of its
/// own, while the caller prepares the next item.
///
/// The merge engine computes tensor `i + 1` while its consumer hashes and writes tensor `i`. A consumer
/// that leaves a core idle (a model folder's SHA-256 is one thread's work) then no longer holds up the
/// kernel, and the reverse. At most one item runs while the caller works: ``submit(_:)`` first waits for
/// the item before it, so the caller knows which of its buffers are free again.
///
/// Every item given has finished, and released what it captured, once ``finish()`` returns: a caller may
/// pass closures it does not let escape (`withoutActuallyEscaping`).
final class HandoffThread: @unchecked Sendable {
    // @unchecked: `pending` and `failure` are handed between the two threads by the semaphores: the caller
    // writes `pending` only while the thread is idle (after `idle.wait()`) and reads `failure` likewise; the
    // thread writes them only between `available.wait()` and `idle.signal()`.
    private var pending: (() throws -> Void)?
    private var failure: (any Error)?
    private var finished = false
    private let available = DispatchSemaphore(value: 0)
    private let idle = DispatchSemaphore(value: 1)

    /// Starts the thread, which waits for work.
    init() {
        let thread = Thread { [self] in
            while runNext() {}
        }
        thread.name = "lorastore-handoff"
        thread.start()
    }

    /// Waits for the item in flight, then hands `work` to the thread and returns at once.
    ///
    /// - Throws: The error of an earlier item; `work` is then not run, and neither is anything later.
    func submit(_ work: @escaping () throws -> Void) throws {
        idle.wait()
        if let failure {
            idle.signal()
            throw failure
        }
        pending = work
        available.signal()
    }

    /// Waits for the item in flight and stops the thread; the items' first error, if any, is rethrown.
    /// Later calls only rethrow that error.
    func finish() throws {
        if !finished {
            finished = true
            idle.wait()
            pending = nil
            available.signal()
        }
        if let failure { throw failure }
    }

    /// Runs the next item (unless an earlier one failed) and reports whether there may be more. The item is
    /// released before the caller hears it is done.
    private func runNext() -> Bool {
        available.wait()
        defer { idle.signal() }
        var work = pending
        pending = nil
        guard work != nil else { return false }
        if failure == nil {
            do { try work?() } catch { failure = error }
        }
        work = nil
        return true
    }
}
