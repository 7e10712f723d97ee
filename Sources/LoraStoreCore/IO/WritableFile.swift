import Foundation

import Glibc

/// A file opened for writing through POSIX calls, with complete writes (short writes and `EINTR` retried),
/// `fsync`, and errors that name the file.
///
/// Foundation's `FileHandle` hides `ENOSPC` behind exceptions on some platforms; here every failure is an
/// ``FileAccessError``.
public final class WritableFile {
    /// The path the file was opened at.
    public let path: String
    private var descriptor: Int32
    /// Bytes written so far.
    public private(set) var bytesWritten = 0
    private let startsWriteback: Bool
    /// Where the data not yet handed to the kernel's writeback starts.
    private var writebackOffset = 0

    /// Creates (or truncates) the file at `path` with mode 0644.
    ///
    /// - Parameter startingWriteback: for a file that will be flushed, start writing its data to storage as
    ///   it arrives: after each write that leaves ``writebackBytes`` or more not yet handed over, and at
    ///   ``close()``. The flush then waits only for the last part, instead of for the whole file, written in
    ///   one go after the work that produced it. `Store.merge` of a 1 GiB BF16 model to a folder (fsync
    ///   included) took 1.20–1.31 s without, 0.67–0.68 s with it (two runs each).
    public init(creating path: String, exclusive: Bool = false, startingWriteback: Bool = false) throws(FileAccessError) {
        self.path = path
        startsWriteback = startingWriteback
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC
        flags |= exclusive ? O_EXCL : O_TRUNC
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw FileAccessError(.create, path: path) }
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileAccessError) {
        guard var address = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(descriptor, address, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileAccessError(.write, path: path)
            }
            if written == 0 { throw FileAccessError(.write, path: path, errno: EIO) }
            address += written
            remaining -= written
            bytesWritten += written
        }
        if bytesWritten - writebackOffset >= Self.writebackBytes { startWriteback() }
    }

    /// Hands the data written since the last call to the kernel's writeback, when the file asked for it.
    private func startWriteback() {
        guard startsWriteback, bytesWritten > writebackOffset else { return }
        LinuxFileCalls.startWriteback(descriptor, offset: writebackOffset, count: bytesWritten - writebackOffset)
        writebackOffset = bytesWritten
    }

    /// The data a file ``init(creating:exclusive:startingWriteback:)`` hands to the kernel's writeback at a
    /// time.
    static let writebackBytes = 8 << 20

    /// Writes all of `bytes`.
    public func write(_ bytes: some ContiguousBytes) throws(FileAccessError) {
        let result: Result<Void, FileAccessError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(FileAccessError) in try write(buffer) }
        }
        try result.get()
    }

    /// Flushes the file's data and metadata to stable storage.
    public func sync() throws(FileAccessError) {
        guard fsync(descriptor) == 0 else { throw FileAccessError(.sync, path: path) }
    }

    /// Closes the file (handing what is left to the writeback, when the file asked for it); later writes are
    /// programming errors.
    public func close() throws(FileAccessError) {
        startWriteback()
        let descriptor = self.descriptor
        self.descriptor = -1
        guard Glibc.close(descriptor) == 0 else { throw FileAccessError(.close, path: path) }
    }

    /// Flushes a closed file's contents to stable storage.
    public static func sync(_ path: String) throws(FileAccessError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw FileAccessError(.sync, path: path) }
    }

    /// Flushes a directory's entries (a rename or link inside it) to stable storage.
    public static func syncDirectory(_ path: String) throws(FileAccessError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw FileAccessError(.sync, path: path) }
    }
}
