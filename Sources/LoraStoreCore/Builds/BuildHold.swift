/// Keeps a materialized build from eviction while it is alive: a shared lock on the build, which eviction
/// (taking it exclusively, without waiting) skips. Released when the hold goes away.
public final class BuildHold: @unchecked Sendable {
    // @unchecked: the lock is only touched again by deinit, and flock itself is thread-safe.
    private let lock: FileLock

    init(lock: FileLock) {
        self.lock = lock
    }

    deinit {
        lock.unlock()
    }
}
