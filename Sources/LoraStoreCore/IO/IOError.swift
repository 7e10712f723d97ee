
import Glibc




/// A failed file-system call, naming the operation, the path and the system's reason.
///
/// "No space left on device" and "Permission denied" reach the user through this error word for word.
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// What was being done: "create", "write", "rename", ...
    public let operation: String
    /// The file or directory concerned.
    public let path: String
    /// The `errno` value.
    public let code: Int32

    public init(_ operation: String, path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    /// True when the disk (or quota) is full.
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }

    public var description: String {
        "cannot \(operation) \(path): \(String(cString: strerror(code)))"
    }
}
