import Glibc

/// A failed POSIX file operation, naming the file and the system's reason.
///
/// The store talks to the kernel directly (zero-copy reads, checked writes, atomic links), so failures carry
/// the `errno` code for programs and the `strerror` text for people: "No space left on device" reaches the
/// user word for word.
public struct FileAccessError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The operation that failed.
    public enum Operation: String, Sendable, Hashable {
        case open, create, stat, map, write, sync, close, link, rename, remove, createDirectory, lock
    }

    /// The operation that failed.
    public let operation: Operation
    /// The path of the file.
    public let path: String
    /// The `errno` value, or 0 when the failure did not come from a system call.
    public let code: Int32
    /// Why it failed, for people (the `strerror` text for system-call failures).
    public let reason: String

    /// Creates an error with an explicit reason.
    public init(operation: Operation, path: String, code: Int32, reason: String) {
        self.operation = operation
        self.path = path
        self.code = code
        self.reason = reason
    }

    /// Creates an error from an `errno` value (by default the current one), using `strerror` for the reason.
    init(_ operation: Operation, path: String, errno code: Int32 = errno) {
        self.init(operation: operation, path: path, code: code, reason: String(cString: strerror(code)))
    }

    /// True when the disk (or the quota) is full.
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }

    public var description: String {
        let verb = switch operation {
        case .stat: "inspect"
        case .createDirectory: "create directory"
        case .rename: "move a finished folder to"
        default: operation.rawValue
        }
        return "cannot \(verb) \(path): \(reason)"
    }
}
