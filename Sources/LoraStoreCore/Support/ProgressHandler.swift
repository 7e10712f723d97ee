/// A step of long work: which phase, and how many units (usually bytes) of how many are done.
public struct ProgressEvent: Sendable, Hashable {
    public var phase: String
    public var completed: Int
    public var total: Int

    public init(phase: String, completed: Int, total: Int) {
        self.phase = phase
        self.completed = completed
        self.total = total
    }
}

/// Receives ``ProgressEvent``s, possibly from several threads.
public typealias ProgressHandler = @Sendable (ProgressEvent) -> Void
