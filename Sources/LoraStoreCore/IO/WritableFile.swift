import Foundation

import Glibc




/// A file opened for writing through POSIX calls, with complete writes (short writes and `EINTR` retried),
/// `fsync`, and errors that name the file.
///
/// Foundation's `FileHandle` hides `ENOSPC` behind exceptions on some platforms; here every failure is an
/// ``IOError``.
public final class WritableFile {
    /// The path the file was opened at.
    public let path: String
    private var descriptor: Int32
    /// Bytes written so far.
    public private(set) var bytesWritten = 0

    /// Creates (or truncates) the file at `path` with mode 0644.
    public init(creating path: String, exclusive: Bool = false) throws(IOError) {
        self.path = path
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC
        flags |= exclusive ? O_EXCL : O_TRUNC
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw IOError("create", path: path) }
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        guard var address = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(descriptor, address, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw IOError("write", path: path)
            }
            if written == 0 { throw IOError("write", path: path, code: EIO) }
            address += written
            remaining -= written
            bytesWritten += written
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: some ContiguousBytes) throws(IOError) {
        let result: Result<Void, IOError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(IOError) in try write(buffer) }
        }
        try result.get()
    }

    /// Flushes the file's data and metadata to stable storage.
    public func sync() throws(IOError) {
        guard fsync(descriptor) == 0 else { throw IOError("sync", path: path) }
    }

    /// Closes the file; later writes are programming errors.
    public func close() throws(IOError) {
        let descriptor = self.descriptor
        self.descriptor = -1
        guard Glibc.close(descriptor) == 0 else { throw IOError("close", path: path) }
    }

    /// Flushes a directory's entries (a rename or link inside it) to stable storage.
    public static func syncDirectory(_ path: String) throws(IOError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw IOError("open directory", path: path) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw IOError("sync directory", path: path) }
    }
}
