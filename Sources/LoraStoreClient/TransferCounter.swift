import LoraStoreCore
import Synchronization

/// Counts bytes sent or received for a progress handler (several uploads may report at once).
final class TransferCounter: Sendable {
    private let phase: String
    private let total: Int
    private let handler: ProgressHandler?
    private let completed = Mutex(0)

    init(phase: String, total: Int, handler: ProgressHandler?) {
        self.phase = phase
        self.total = total
        self.handler = handler
        handler?(ProgressEvent(phase: phase, completed: 0, total: total))
    }

    func add(_ bytes: Int) {
        guard let handler else { return }
        let now = completed.withLock { value in
            value += bytes
            return value
        }
        handler(ProgressEvent(phase: phase, completed: now, total: total))
    }
}
