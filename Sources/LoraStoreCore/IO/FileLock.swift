import Foundation
import Glibc

/// An advisory `flock` on a lock file, shared or exclusive, between threads (each lock opens its own
/// descriptor) and processes alike. Released on ``unlock()`` or when the value is destroyed. Sendable: its
/// only state is the descriptor, fixed at creation, and `flock` on it is safe from any thread.
public final class FileLock: Sendable {
    public enum Mode: Sendable {
        case shared
        case exclusive
    }

    private let descriptor: Int32
    public let path: String

    /// Opens (creating) the lock file at `path` without locking it.
    public init(path: String) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path) }
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        close(descriptor)
    }

    /// Waits for the lock in `mode`. A lock already held is converted, but not atomically: `flock` releases it
    /// first, so another descriptor may take the lock in between (re-check what the lock guarded).
    public func lock(_ mode: Mode) throws {
        while flock(descriptor, mode == .shared ? LOCK_SH : LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileAccessError(.lock, path: path) }
        }
    }

    /// Waits at most `limit` for the lock in `mode`, polling (`flock` itself cannot time out) with pauses
    /// that grow from 1 to 50 ms; returns whether it took the lock. For a lock not held yet: a failed
    /// conversion of a held one would leave it released (see ``tryLock(_:)``).
    public func lock(_ mode: Mode, waitingAtMost limit: Duration) throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var pause = Duration.milliseconds(1)
        while true {
            if try tryLock(mode) { return true }
            let now = clock.now
            guard now < deadline else { return false }
            Thread.sleep(forTimeInterval: min(pause, now.duration(to: deadline)).inSeconds)
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    /// Takes the lock in `mode` if nobody holds a conflicting one; returns whether it did. A held lock whose
    /// conversion fails is left released, as `flock` does.
    public func tryLock(_ mode: Mode) throws -> Bool {
        if flock(descriptor, (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 { return true }
        guard errno == EWOULDBLOCK || errno == EINTR else { throw FileAccessError(.lock, path: path) }
        return false
    }

    /// Releases the lock.
    public func unlock() {
        flock(descriptor, LOCK_UN)
    }
}
