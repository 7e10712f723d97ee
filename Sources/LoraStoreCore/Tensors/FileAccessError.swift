#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed POSIX file operation, naming the file and the system's reason.
///
/// ``MappedFile`` and ``SafetensorsWriter`` talk to the kernel directly (for zero-copy reads and
/// checked writes), so their failures carry the `errno` code for programs and `strerror` text for people.
public struct FileAccessError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The operation that failed.
    public enum Operation: String, Sendable, Hashable {
        case open, stat, map, write, sync, close
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

    /// Creates an error from an `errno` value, using `strerror` for the reason.
    init(_ operation: Operation, path: String, errno code: Int32) {
        self.init(operation: operation, path: path, code: code, reason: String(cString: strerror(code)))
    }

    public var description: String {
        let verb = switch operation {
        case .open: "open"
        case .stat: "inspect"
        case .map: "map"
        case .write: "write"
        case .sync: "sync"
        case .close: "close"
        }
        return "cannot \(verb) \(path): \(reason)"
    }
}
