import Foundation
import Glibc

/// New blob files written together and made durable together: the group commit behind every push.
///
/// Writing a blob alone costs a flush of its file and one of its folder. A batch instead writes every new
/// blob to its own temporary file under `tmp/` with no flush (see ``stage(_:digest:encoding:in:)``), then
/// ``publish(_:in:linked:)`` makes all the files durable, links each into place (a link never replaces an
/// existing file, so two writers of one blob cannot swap codecs under the index), and makes the links
/// durable. When it returns, every blob is whole and durable under its final name, so index rows may point
/// at them: the same guarantee as ``BlobStore/write(_:digest:encoding:)``.
///
/// A few blobs are flushed one by one, each file and then each folder linked into. From
/// ``filesystemSyncThreshold`` blobs on, a flush per file costs a journal commit and a disk cache flush
/// each (milliseconds), so the batch instead flushes the store's filesystem once before linking and once
/// after (`syncfs`): two flushes whatever the number of blobs, at the price of also writing back whatever
/// else is waiting on that filesystem.
///
/// The caller holds the store's maintenance lock shared from staging to its commit, so garbage collection
/// sweeps neither the temporary files nor the linked blobs before the index knows them.
enum BlobBatch {
    /// The number of blobs from which a publish flushes the whole filesystem instead of each file.
    static let filesystemSyncThreshold = 16

    /// A blob written to a temporary file, not yet flushed nor in place.
    struct Staged: Sendable {
        let digest: Digest
        let temporaryPath: String
        let logicalSize: Int
        let storedSize: Int
        let codec: BlobCodec
    }

    /// Encodes `bytes` as `encoding` asks (when that saves space) and writes them to a new temporary file,
    /// without flushing it: its writeback is started, so that the publish's flush mostly finds it done.
    ///
    /// - Throws: ``FileAccessError`` (a full disk, say) whose reason names `origin`, what the bytes are
    ///   (`tensor "NAME" of PATH`): the temporary file's name says nothing to the user.
    static func stage(
        _ bytes: UnsafeRawBufferPointer, digest: Digest, encoding: BlobEncoding, origin: String, in blobs: BlobStore
    ) throws -> Staged {
        let (codec, encoded) = BlobStore.encode(bytes, as: encoding)
        let path = blobs.temporaryDirectory.path + "/\(digest.hex).\(getpid()).\(UInt32.random(in: .min ... .max))"
        do {
            let file = try WritableFile(creating: path, exclusive: true, startingWriteback: true)
            if let encoded { try file.write(encoded) } else { try file.write(bytes) }
            try file.close()
        } catch {
            unlink(path)
            throw FileAccessError(
                operation: error.operation, path: error.path, code: error.code, reason: "\(error.reason), while storing \(origin)")
        }
        return Staged(
            digest: digest, temporaryPath: path, logicalSize: bytes.count, storedSize: encoded?.count ?? bytes.count,
            codec: codec)
    }

    /// Flushes every staged file, links each into place and flushes the blob folders, then removes the
    /// temporary names. Returns the blobs this call created; a blob another writer placed meanwhile is left
    /// to that writer's file (equally valid) and not returned.
    ///
    /// `adopted` are blobs already in place that another writer linked but may not have flushed the folder
    /// of yet; their folders are flushed too, since the caller's index rows will point at them.
    ///
    /// `replacing` are blobs whose file in place is damaged and indexed by nothing: their staged file is
    /// renamed over it, in one step, so a reader or another writer sees the damaged file or a whole one,
    /// never none (a whole file another writer linked meanwhile is replaced by the same bytes).
    ///
    /// `linked` receives each blob as soon as its link exists, so that a caller whose publish or commit
    /// fails knows which files to take back. The temporary files are removed whether this succeeds or not.
    static func publish(
        _ staged: [Staged], adopting adopted: [Digest] = [], replacing damaged: Set<Digest> = [], in blobs: BlobStore,
        linked: inout [StoredBlob]
    ) throws -> [StoredBlob] {
        defer {
            for blob in staged { unlink(blob.temporaryPath) }
        }
        let syncsFilesystem = staged.count + adopted.count >= filesystemSyncThreshold
        if syncsFilesystem {
            try syncFilesystem(containing: blobs.temporaryDirectory.path)
        } else {
            for blob in staged {
                try syncFile(blob.temporaryPath)
            }
        }
        func folder(of digest: Digest) -> String { blobs.blobsDirectory.path + "/" + digest.hex.prefix(2) }
        var created: [StoredBlob] = []
        var folders = Set(adopted.map(folder(of:)))
        for blob in staged {
            let folder = try blobs.prefixFolder(of: blob.digest)
            // The folder is flushed even when another writer linked the blob first: its own flush may not
            // have happened yet, and the index is about to point at the file.
            folders.insert(folder)
            let finalPath = folder + "/" + blob.digest.hex
            if damaged.contains(blob.digest) {
                guard rename(blob.temporaryPath, finalPath) == 0 else { throw FileAccessError(.rename, path: finalPath) }
            } else if link(blob.temporaryPath, finalPath) != 0 {
                if errno == EEXIST { continue }
                throw FileAccessError(.link, path: finalPath)
            }
            let stored = StoredBlob(
                digest: blob.digest, logicalSize: blob.logicalSize, storedSize: blob.storedSize, codec: blob.codec,
                created: true)
            linked.append(stored)
            created.append(stored)
        }
        if syncsFilesystem {
            try syncFilesystem(containing: blobs.blobsDirectory.path)
        } else {
            for folder in folders.sorted() {
                try WritableFile.syncDirectory(folder)
            }
        }
        return created
    }

    /// Removes staged files that will not be published (after a failure while staging others).
    static func discard(_ staged: [Staged]) {
        for blob in staged { unlink(blob.temporaryPath) }
    }

    /// Flushes everything written to the filesystem holding `path` (data, inodes and folders), and waits.
    private static func syncFilesystem(containing path: String) throws(FileAccessError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path) }
        defer { close(descriptor) }
        guard LinuxFileCalls.syncFilesystem(descriptor) else { throw FileAccessError(.sync, path: path) }
    }

    /// Flushes a file written and closed earlier (the flush covers every write to the file, whichever
    /// descriptor made it).
    private static func syncFile(_ path: String) throws(FileAccessError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileAccessError(.open, path: path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw FileAccessError(.sync, path: path) }
    }
}
