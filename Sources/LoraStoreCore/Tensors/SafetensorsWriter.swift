import Foundation
import Crypto

/// Writes a safetensors file tensor by tensor, so large tensors are streamed instead of assembled in memory.
///
/// The writer creates (or truncates) the file and writes the header at once; then ``append(_:)`` takes
/// each tensor's bytes in the header's order, and ``finish(sync:)`` checks that all arrived and closes the
/// file. Failures such as a full disk (`ENOSPC`) throw a ``FileAccessError`` naming the file.
///
/// A writer that fails or is dropped before ``finish(sync:)`` leaves a partial file behind: write to a
/// temporary path and rename it into place once finished.
public final class SafetensorsWriter {
    /// The file being written.
    public let url: URL
    /// The header, which fixes the order and size of the tensors.
    public let header: SafetensorsHeader

    private let file: WritableFile
    private var hasher: SHA256?
    private var nextTensor = 0
    private var finished = false
    /// The SHA-256 of the whole file, once finished with `computeDigest`.
    public private(set) var digest: Digest?

    /// Creates the file at `url` (replacing any file there, mode 0644) and writes `header`.
    ///
    /// - Parameters:
    ///   - computeDigest: hash the file's bytes as they are written (``digest``), so recording a file's
    ///     content address costs no second read.
    ///   - startingWriteback: for a file finished with `sync`, start writing its data to storage as it
    ///     arrives, so that the flush waits only for the last part
    ///     (``WritableFile/init(creating:exclusive:startingWriteback:)``).
    /// - Throws: ``FileAccessError`` when the file cannot be created or written.
    public init(url: URL, header: SafetensorsHeader, computeDigest: Bool = false, startingWriteback: Bool = false) throws {
        self.url = url
        self.header = header
        file = try WritableFile(creating: url.path, startingWriteback: startingWriteback)
        hasher = computeDigest ? SHA256() : nil
        try header.encoded.withUnsafeBytes(writeAll)
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
            throw SafetensorsError(
                .sizeMismatch, file: url.path, tensor: tensor.name,
                detail: "got \(bytes.count) bytes for shape \(tensor.shape) of \(tensor.dtype.rawValue) "
                    + "(\(tensor.byteCount) bytes)"
            )
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
        precondition(!finished, "SafetensorsWriter.finish called twice for \(url.path)")
        guard nextTensor == header.tensors.count else {
            throw SafetensorsError(
                .tensorCountMismatch, file: url.path, tensor: header.tensors[nextTensor].name,
                detail: "not written: finished after \(nextTensor) of \(header.tensors.count) tensors"
            )
        }
        finished = true
        if sync { try file.sync() }
        try file.close()
        digest = hasher.map { Digest($0.finalize()) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "SafetensorsWriter used after finish for \(url.path)")
        guard var running = hasher, bytes.count >= Self.concurrentHashBytes else {
            hasher?.update(bufferPointer: bytes)
            try file.write(bytes)
            return
        }
        // Hashing (about 1.3 GB/s on one core) and copying into the page cache both only read the bytes: on
        // two threads a large tensor costs the longer of the two instead of their sum.
        let file = self.file
        _ = try concurrently({ running.update(bufferPointer: bytes) }, { try file.write(bytes) })
        hasher = running
    }

    /// Bytes from which a hashed write runs its hash and its write on two threads: far above the cost of
    /// handing work to another thread (tens of microseconds, against 3 ms to hash 4 MiB).
    static let concurrentHashBytes = 4 << 20
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
