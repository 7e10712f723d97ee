import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory.
///
/// Tensor files can be many gigabytes; mapping lets lorastore validate a header and hand out tensor
/// bytes without reading or copying the data (on Linux, `Data(contentsOf:options: .mappedIfSafe)` reads
/// the whole file instead). Pages are loaded lazily by the kernel and shared with the page cache.
///
/// The mapping is private and read-only and lives until the object is deallocated; ``bytes`` and every
/// slice of it are valid only while the `MappedFile` is alive. If another process truncates the file
/// while it is mapped, touching the lost pages raises `SIGBUS`: map only files that are not rewritten in place.
public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is immutable (PROT_READ) after init, so sharing it across threads is safe.

    /// The mapped file.
    public let url: URL
    /// The file's contents (empty, with a `nil` base address, for an empty file).
    public let bytes: UnsafeRawBufferPointer
    /// The file that was mapped, as it was then.
    let identity: FileIdentity

    /// Maps the file at `url`.
    ///
    /// - Throws: ``FileAccessError`` when the file cannot be opened, inspected or mapped, or is not a regular file.
    public init(url: URL) throws(FileAccessError) {
        let path = url.path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path, errno: errno) }
        defer { close(descriptor) }  // The mapping keeps its own reference to the file.

        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileAccessError(.stat, path: path, errno: errno) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw FileAccessError(operation: .map, path: path, code: 0, reason: "not a regular file")
        }

        identity = FileIdentity(status)
        let count = Int(status.st_size)
        if count == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        } else {
            let address = mmap(nil, count, PROT_READ, MAP_PRIVATE, descriptor, 0)
            guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw FileAccessError(.map, path: path, errno: errno)
            }
            bytes = UnsafeRawBufferPointer(start: address, count: count)
        }
        self.url = url
    }

    deinit {
        if let address = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: address), bytes.count)
        }
    }
}
