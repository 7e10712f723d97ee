#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The name of a folder a model is written into before it takes its final name, beside it:
/// `.NAME.KIND-HOST-PID-N` (KIND `partial` for a local write, `pulling` for a download; HOST eight hex
/// digits of this machine's name's SHA-256; N counting this process's staging folders).
///
/// Each write has a folder of its own, even two in one process or two processes of one id on two machines
/// sharing a disk (containers often run as process 1), and a folder left by a write that stopped can be
/// told from one still being written: its machine is this one and its process is gone. A folder of another
/// machine is never taken for abandoned.
public struct StagingFolderName: Sendable, Hashable {
    /// The final name of the folder being written.
    public let destination: String
    /// `partial` or `pulling`.
    public let kind: String
    public let host: String
    public let processID: pid_t
    public let sequence: Int

    /// A new name for a write of `destination`, by this process on this machine.
    public init(writing destination: String, kind: String) {
        self.destination = destination
        self.kind = kind
        host = Self.thisHost
        processID = getpid()
        sequence = Self.count.add(1, ordering: .relaxed).newValue
    }

    /// Reads a staging folder's name; nil for any other name.
    public init?(parsing name: String) {
        guard name.hasPrefix(".") else { return nil }
        let fields = name.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count >= 4, let pid = pid_t(fields[fields.count - 2]), let sequence = Int(fields[fields.count - 1]),
              fields[fields.count - 3].count == 8
        else { return nil }
        let head = fields.dropLast(3).joined(separator: "-")
        guard let dot = head.lastIndex(of: "."), dot > head.index(after: head.startIndex) else { return nil }
        destination = String(head[head.index(after: head.startIndex) ..< dot])
        kind = String(head[head.index(after: dot)...])
        host = String(fields[fields.count - 3])
        processID = pid
        self.sequence = sequence
    }

    /// The name on disk.
    public var name: String {
        ".\(destination).\(kind)-\(host)-\(processID)-\(sequence)"
    }

    /// Whether the write that named this folder stopped: it ran on this machine, and its process is gone.
    public var isAbandoned: Bool {
        host == Self.thisHost && ProcessLiveness.hasExited(processID)
    }

    /// Whether `name` is the staging folder of a write of `destination` of `kind` that stopped: named as
    /// this type names them (``isAbandoned``), or as earlier versions did, `.NAME.KIND-PID` with that
    /// process gone, or `.NAME.KIND` (one folder for every run).
    public static func isAbandoned(_ name: String, writing destination: String, kind: String) -> Bool {
        if let staging = StagingFolderName(parsing: name) {
            return staging.destination == destination && staging.kind == kind && staging.isAbandoned
        }
        let legacy = ".\(destination).\(kind)"
        if name == legacy { return true }
        guard name.hasPrefix(legacy + "-"), let pid = pid_t(name.dropFirst(legacy.count + 1)) else { return false }
        return ProcessLiveness.hasExited(pid)
    }

    private static let count = Atomic<Int>(0)

    /// Eight hex digits of this machine's name's SHA-256.
    static let thisHost: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0 ? String(cString: buffer) : "unknown"
        return String(Digest(of: Array(host.utf8)).hex.prefix(8))
    }()
}
