import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a safetensors file tensor by tensor, so large tensors are streamed instead of assembled in memory.
///
/// The writer creates (or truncates) the file and writes the header at once; then ``append(_:)`` takes
/// each tensor's bytes in the header's order, and ``finish(sync:)`` checks that all arrived and closes the
/// file. Writes loop over short writes and `EINTR`; failures such as a full disk (`ENOSPC`) throw a
/// ``FileAccessError`` naming the file.
///
/// A writer that fails or is dropped before ``finish(sync:)`` leaves a partial file behind: write to a
/// temporary path and rename it into place once finished.
public final class SafetensorsWriter {
    /// The file being written.
    public let url: URL
    /// The header, which fixes the order and size of the tensors.
    public let header: SafetensorsHeader

    private var descriptor: Int32?
    private var nextTensor = 0

    /// Creates the file at `url` (replacing any file there, mode 0644) and writes `header`.
    ///
    /// - Throws: ``FileAccessError`` when the file cannot be created or written.
    public init(url: URL, header: SafetensorsHeader) throws {
        self.url = url
        self.header = header
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: url.path, errno: errno) }
        self.descriptor = descriptor
        try header.encoded.withUnsafeBytes(writeAll)
    }

    deinit {
        if let descriptor { close(descriptor) }
    }

    /// Writes the data of the next tensor in header order.
    ///
    /// - Throws: ``SafetensorsError`` (`tensorCountMismatch` when every tensor was already written,
    ///   `sizeMismatch` when `bytes` is not the tensor's byte size), or ``FileAccessError`` when writing fails.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard nextTensor < header.tensors.count else {
            throw SafetensorsError(.tensorCountMismatch, file: url.path,
                                   detail: "all \(header.tensors.count) tensors of the header were already written")
        }
        let tensor = header.tensors[nextTensor]
        guard bytes.count == tensor.byteCount else {
            throw SafetensorsError(.sizeMismatch, file: url.path, tensor: tensor.name,
                                   detail: "got \(bytes.count) bytes for shape \(tensor.shape) of \(tensor.dtype.rawValue) (\(tensor.byteCount) bytes)")
        }
        try writeAll(bytes)
        nextTensor += 1
    }

    /// Checks that every tensor was written, optionally flushes the file to storage, and closes it.
    ///
    /// - Parameter sync: Whether to `fsync` before closing, so the file survives a crash once this returns.
    /// - Throws: ``SafetensorsError`` of kind `tensorCountMismatch` when tensors are missing (the file is
    ///   left open), or ``FileAccessError`` when syncing or closing fails.
    public func finish(sync: Bool = true) throws {
        guard let descriptor else { preconditionFailure("SafetensorsWriter.finish called twice for \(url.path)") }
        guard nextTensor == header.tensors.count else {
            throw SafetensorsError(.tensorCountMismatch, file: url.path, tensor: header.tensors[nextTensor].name,
                                   detail: "finished after \(nextTensor) of \(header.tensors.count) tensors; this one was not written")
        }
        self.descriptor = nil
        if sync {
            while fsync(descriptor) != 0 {
                guard errno == EINTR else {
                    let code = errno
                    close(descriptor)
                    throw FileAccessError(.sync, path: url.path, errno: code)
                }
            }
        }
        // Linux closes the descriptor even when close reports EINTR, so it is never retried.
        guard close(descriptor) == 0 else { throw FileAccessError(.close, path: url.path, errno: errno) }
    }

    /// Writes all of `bytes`, looping over short writes and interruptions.
    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(FileAccessError) {
        guard let descriptor else { preconditionFailure("SafetensorsWriter used after finish for \(url.path)") }
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, base + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                throw FileAccessError(.write, path: url.path, errno: written < 0 ? errno : EIO)
            }
        }
    }
}

extension SafetensorsWriter {
    /// Writes a complete safetensors file in one call, laying the tensors out in the order given.
    ///
    /// - Parameters:
    ///   - url: Where to write (an existing file is replaced).
    ///   - tensors: Each tensor's name, type, shape and bytes.
    ///   - metadata: The `__metadata__` map (left out of the header when empty).
    ///   - sync: Whether to `fsync` before closing.
    /// - Returns: The header that was written.
    @discardableResult
    public static func write(
        to url: URL,
        tensors: [(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer)],
        metadata: [String: String] = [:],
        sync: Bool = false
    ) throws -> SafetensorsHeader {
        let header = try SafetensorsHeader(
            tensors: tensors.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata, label: url.path
        )
        let writer = try SafetensorsWriter(url: url, header: header)
        for tensor in tensors {
            try writer.append(tensor.bytes)
        }
        try writer.finish(sync: sync)
        return header
    }
}

/// `write(2)`, reachable from inside ``SafetensorsWriter`` whose own `write` methods would shadow it.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
