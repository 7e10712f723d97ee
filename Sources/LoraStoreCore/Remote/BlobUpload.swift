import Crypto
import Foundation
import Glibc

/// One blob being received by a registry server: bytes are hashed as they arrive and spooled to a file
/// under the store's `tmp/`; ``finish()`` stores and indexes the blob only when the bytes are complete and
/// hash to the digest. A rejected, cancelled or abandoned upload leaves nothing (its spool file is removed).
///
/// `@unchecked Sendable`: used by one request at a time, which may hand it whole to a worker thread to
/// finish; it is never used from two threads at once. Uploaded blobs are indexed at once, unreferenced until a
/// manifest names them, so an interrupted push resumes with what it sent; garbage collection reclaims those
/// a push never completes, after its grace period.
public final class BlobUpload: @unchecked Sendable {
    /// The digest the bytes must hash to.
    public let digest: Digest
    /// The size announced (`Content-Length`), when known.
    public let expectedSize: Int?
    /// The most bytes accepted.
    public let limit: Int
    private let store: Store
    private let encoding: BlobEncoding
    private let repository: String
    private let spoolPath: String
    private var file: WritableFile?
    private var hasher = SHA256()
    /// Bytes received so far.
    public private(set) var received = 0

    /// Starts receiving `digest` for a push to `repository`, to be stored as `encoding` asks.
    public init(
        into store: Store, digest: Digest, repository: String, expectedSize: Int?, limit: Int,
        encoding: BlobEncoding = .raw
    ) throws {
        try Self.checkAnnouncedSize(expectedSize, limit: limit, digest: digest)
        self.store = store
        self.digest = digest
        self.expectedSize = expectedSize
        self.limit = min(limit, expectedSize ?? limit)
        self.encoding = encoding
        self.repository = repository
        spoolPath = store.blobs.temporaryDirectory.path + "/upload-\(digest.hex).\(getpid()).\(UInt64.random(in: .min ... .max))"
        // A raw blob's spool file becomes the blob, flushed at the end: its writeback starts as it arrives.
        file = try WritableFile(creating: spoolPath, exclusive: true, startingWriteback: encoding == .raw)
    }

    deinit {
        cancel()
    }

    /// Refuses an upload whose announced size (`Content-Length`) is over `limit`, before anything is received
    /// or waited for.
    /// - Throws: ``ReceiveError/tooLarge(digest:limit:)``.
    public static func checkAnnouncedSize(_ expectedSize: Int?, limit: Int, digest: Digest) throws {
        if let expectedSize, expectedSize > limit { throw ReceiveError.tooLarge(digest: digest, limit: limit) }
    }

    /// Takes the next bytes of the body.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let file else { throw ReceiveError.truncated(digest: digest, expected: expectedSize, received: received) }
        guard received + bytes.count <= limit else {
            cancel()
            throw ReceiveError.tooLarge(digest: digest, limit: limit)
        }
        hasher.update(bufferPointer: bytes)
        try file.write(bytes)
        received += bytes.count
    }

    /// Checks the bytes and stores the blob (reusing it when the store has it), indexed but referenced by
    /// nothing yet.
    public func finish() throws -> StoredBlob {
        defer { cancel() }
        guard let file else { throw ReceiveError.truncated(digest: digest, expected: expectedSize, received: received) }
        if let expectedSize, received != expectedSize {
            throw ReceiveError.truncated(digest: digest, expected: expectedSize, received: received)
        }
        let actual = Digest(hasher.finalize())
        guard actual == digest else { throw ReceiveError.digestMismatch(expected: digest, actual: actual) }
        try file.close()
        self.file = nil
        let mapping = try MappedFile(url: URL(fileURLWithPath: spoolPath))
        return try store.storeReceivedBlob(
            mapping.bytes, digest: digest, encoding: encoding, spooledFile: spoolPath, repository: repository)
    }

    /// Abandons the upload, removing its spool file.
    public func cancel() {
        if let file {
            try? file.close()
            self.file = nil
        }
        unlink(spoolPath)
    }
}
