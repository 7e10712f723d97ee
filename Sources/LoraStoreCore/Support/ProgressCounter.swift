import Synchronization

/// Adds up work done on several threads and reports it to a ``ProgressHandler``.
final class ProgressCounter: Sendable {
    private let phase: String
    private let total: Int
    private let handler: ProgressHandler?
    private let completed = Atomic<Int>(0)

    init(phase: String, total: Int, handler: ProgressHandler?) {
        self.phase = phase
        self.total = total
        self.handler = handler
    }

    /// Records `amount` more units done.
    func add(_ amount: Int) {
        let now = completed.add(amount, ordering: .relaxed).newValue
        handler?(ProgressEvent(phase: phase, completed: now, total: total))
    }
}
