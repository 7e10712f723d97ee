import Foundation
import Testing

/// A tmpfs of a few hundred kilobytes or megabytes, mounted for one test so that a disk really fills
/// (`ENOSPC` from the kernel, at whatever write reaches the limit). Mounting needs root where the
/// container allows it; elsewhere ``isAvailable`` is false and the tests that need one are skipped.
enum SmallFilesystem {
    /// Whether this process can mount a tmpfs (tried once, on a throwaway mount point).
    static let isAvailable: Bool = {
        (try? with(bytes: 64 << 10) { _ in true }) ?? false
    }()

    /// Mounts a tmpfs of `bytes` on a new temporary folder, runs `body` with it, then unmounts it (lazily
    /// when something still holds it open, which is recorded as an issue).
    static func with<Result>(bytes: Int, _ body: (URL) throws -> Result) throws -> Result {
        try TemporaryDirectory.with { directory in
            try run("/bin/mount", "-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", directory.path)
            defer {
                do {
                    try run("/bin/umount", directory.path)
                } catch {
                    Issue.record("\(error); unmounting lazily")
                    try? run("/bin/umount", "-l", directory.path)
                }
            }
            return try body(directory)
        }
    }

    /// Changes the size of the tmpfs mounted at `directory` (not below what it holds).
    static func resize(_ directory: URL, to bytes: Int) throws {
        try run("/bin/mount", "-o", "remount,size=\(bytes)", directory.path)
    }

    /// Bytes the tmpfs mounted at `directory` holds.
    static func usedBytes(_ directory: URL) throws -> Int {
        var status = statvfs()
        guard statvfs(directory.path, &status) == 0 else { throw Failure(description: "statvfs \(directory.path) failed") }
        return Int(status.f_blocks - status.f_bfree) * Int(status.f_frsize)
    }

    /// A mount or unmount that did not succeed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private static func run(_ executable: String, _ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }
}
