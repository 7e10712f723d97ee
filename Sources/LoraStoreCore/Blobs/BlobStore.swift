import Foundation
import Glibc

/// The blob files under a store root: `blobs/sha256/<first two hex digits>/<hex>`.
///
/// Writes are atomic: bytes go to a temporary file under `tmp/`, are flushed, then linked into place (a link
/// never replaces an existing file, so two writers of the same blob cannot swap codecs under the index), and
/// the directory is flushed. A reader therefore sees a whole blob or none. Which blobs *count* is the index's
/// business: a file without an index row is an orphan that garbage collection may remove.
public struct BlobStore: Sendable {
    /// The store root.
    public let root: URL
    /// Raw blob files kept mapped between reads (shared by the copies of this value).
    let mappings: BlobMappings

    public init(root: URL) {
        self.root = root
        mappings = BlobMappings()
    }

    /// The folder holding the blob files.
    public var blobsDirectory: URL { root.appending(path: "blobs/sha256", directoryHint: .isDirectory) }

    /// The folder for files being written.
    public var temporaryDirectory: URL { root.appending(path: "tmp", directoryHint: .isDirectory) }

    /// The path of a blob's file.
    public func path(of digest: Digest) -> String {
        blobsDirectory.path + "/" + digest.hex.prefix(2) + "/" + digest.hex
    }

    /// The size of the blob's file, or nil when it does not exist.
    public func storedSize(of digest: Digest) -> Int? {
        var info = stat()
        guard stat(path(of: digest), &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    /// The blob file's modification time (when it was written), or nil when it does not exist.
    public func modificationDate(of digest: Digest) -> Date? {
        var info = stat()
        guard stat(path(of: digest), &info) == 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
    }

    /// Creates the folders a store needs.
    public func createDirectories() throws {
        try FileManager.default.createDirectory(at: blobsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    /// Stores `bytes` under `digest` (which the caller computed from exactly these bytes) unless the blob
    /// exists, encoding new blobs as `encoding` asks when that saves space.
    ///
    /// `spooledFile` names a closed file under ``temporaryDirectory`` that holds exactly `bytes` (an upload's
    /// spool file): a blob stored raw is that file, flushed and linked into place, rather than a second copy
    /// of the bytes. The file keeps its own name; the caller removes it.
    public func write(
        _ bytes: UnsafeRawBufferPointer, digest: Digest, encoding: BlobEncoding, spooledFile: String? = nil
    ) throws -> StoredBlob {
        if let existing = try existingBlob(digest, logicalSize: bytes.count) {
            // Another writer may have linked it without flushing its folder yet, and the caller is about to
            // index it.
            try WritableFile.syncDirectory(try prefixFolder(of: digest))
            return existing
        }
        let (codec, encoded) = Self.encode(bytes, as: encoding)
        let created: Bool
        if let encoded {
            created = try encoded.withUnsafeBytes { try place($0, digest: digest) }
        } else if let spooledFile {
            try WritableFile.sync(spooledFile)
            created = try link(spooledFile, digest: digest)
        } else {
            created = try place(bytes, digest: digest)
        }
        guard created else {
            guard let existing = try existingBlob(digest, logicalSize: bytes.count) else {
                throw BlobStoreError.missing(digest)
            }
            return existing
        }
        return StoredBlob(
            digest: digest, logicalSize: bytes.count, storedSize: encoded?.count ?? bytes.count,
            codec: codec, created: true)
    }

    /// The codec a new blob of `bytes` is stored with, and its encoded bytes when that is not raw: a
    /// compressed encoding is kept only when it is smaller than the logical bytes.
    ///
    /// Floating-point tensors take ``ExponentCodec``, except near-constant ones: it stores every element's sign
    /// and low mantissa bits as they are (a quarter of a BF16 tensor), which zlib takes to almost nothing when
    /// they repeat, as in an untrained LoRA B (all zeros). When its coded part spends less than one bit per
    /// element, ``ByteGroupedCodec`` is tried as well and the smaller encoding kept.
    static func encode(_ bytes: UnsafeRawBufferPointer, as encoding: BlobEncoding) -> (codec: BlobCodec, encoded: [UInt8]?) {
        var codec = BlobCodec.raw
        var encoded: [UInt8]?
        switch encoding {
        case .raw:
            break
        case .compressed(let elementWidth):
            if let compressed = ByteGroupedCodec.encode(bytes, elementWidth: elementWidth) {
                (codec, encoded) = (.byteGroupedZlib, compressed)
            }
        case .floatingPoint(let layout):
            let count = bytes.count / layout.width
            if let compressed = ExponentCodec.encode(bytes, layout: layout) {
                (codec, encoded) = (.exponentANS, compressed)
            }
            let codedBytes = (encoded?.count ?? bytes.count) - layout.residueSize(count)
            if codedBytes < count / 8, let grouped = ByteGroupedCodec.encode(bytes, elementWidth: layout.width),
               grouped.count < encoded?.count ?? bytes.count {
                (codec, encoded) = (.byteGroupedZlib, grouped)
            }
        }
        guard let compressed = encoded, compressed.count < bytes.count else { return (.raw, nil) }
        return (codec, compressed)
    }

    /// Describes a blob already on disk. A compressed encoding is only ever kept when it is smaller than the
    /// logical bytes, so a file of the logical size is raw; otherwise its magic number names the codec.
    public func existingBlob(_ digest: Digest, logicalSize: Int) throws -> StoredBlob? {
        guard let storedSize = storedSize(of: digest) else { return nil }
        var codec = BlobCodec.raw
        if storedSize != logicalSize {
            let mapping = try MappedFile(url: URL(fileURLWithPath: path(of: digest)))
            codec = ExponentCodec.isEncoding(mapping.bytes) ? .exponentANS : .byteGroupedZlib
        }
        return StoredBlob(
            digest: digest, logicalSize: logicalSize, storedSize: storedSize, codec: codec, created: false)
    }

    /// Whether the blob file in place reads back as `digest`, `logicalSize` bytes long: a file another writer
    /// linked is, while one a crash truncated or the disk damaged is not. Reads and hashes the whole blob.
    func isWhole(_ digest: Digest, logicalSize: Int) -> Bool {
        guard let blob = try? existingBlob(digest, logicalSize: logicalSize) else { return false }
        return (try? read(digest, codec: blob.codec, size: logicalSize, verify: true)) != nil
    }

    /// Reads a blob's logical bytes: mapped when raw, decoded when compressed. With `size` (the logical size a
    /// manifest or the index records), a blob of another size is ``BlobStoreError/damaged(_:reason:)``; an
    /// encoded blob's size is checked from its header, before its output is allocated. With `verify`, the
    /// bytes are re-hashed and must match the digest.
    ///
    /// Raw blobs read without `verify` stay mapped for the next read (``BlobMappings``); a verifying read,
    /// which scans every blob once, maps its own.
    public func read(_ digest: Digest, codec: BlobCodec, size: Int? = nil, verify: Bool = false) throws -> BlobContents {
        let path = path(of: digest)
        let contents: BlobContents
        if codec == .raw, !verify {
            contents = BlobContents(mapping: try mappings.mapping(of: digest, path: path))
        } else {
            guard access(path, F_OK) == 0 else { throw BlobStoreError.missing(digest) }
            let mapping = try MappedFile(url: URL(fileURLWithPath: path))
            switch codec {
            case .raw:
                contents = BlobContents(mapping: mapping)
            case .byteGroupedZlib:
                contents = try decoded(
                    digest, mapping, expected: size, size: ByteGroupedCodec.decodedSize, decode: ByteGroupedCodec.decode)
            case .exponentANS:
                contents = try decoded(
                    digest, mapping, expected: size, size: ExponentCodec.decodedSize, decode: ExponentCodec.decode)
            }
        }
        if let size, contents.bytes.count != size {
            throw BlobStoreError.damaged(digest, reason: "\(contents.bytes.count) bytes, expected \(size)")
        }
        if verify {
            let actual = Digest(of: contents.bytes)
            guard actual == digest else { throw BlobStoreError.digestMismatch(expected: digest, actual: actual) }
        }
        return contents
    }

    /// Decodes a compressed blob into a new buffer of the size its header gives, refusing a size other than
    /// `expected` before allocating; any codec error becomes ``BlobStoreError/damaged(_:reason:)`` naming the
    /// blob.
    private func decoded(
        _ digest: Digest, _ mapping: MappedFile, expected: Int?,
        size: (UnsafeRawBufferPointer) throws(BlobCodecError) -> Int,
        decode: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) throws(BlobCodecError) -> Void
    ) throws -> BlobContents {
        let byteCount: Int
        do {
            byteCount = try size(mapping.bytes)
        } catch {
            throw BlobStoreError.damaged(digest, reason: "\(error)")
        }
        if let expected, byteCount != expected {
            throw BlobStoreError.damaged(digest, reason: "its header says \(byteCount) bytes, expected \(expected)")
        }
        do {
            let buffer = ScratchBuffer(byteCount: byteCount)
            try decode(mapping.bytes, UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<byteCount]))
            return BlobContents(decoded: buffer, count: byteCount)
        } catch {
            throw BlobStoreError.damaged(digest, reason: "\(error)")
        }
    }

    /// Deletes a blob file. The caller has checked that no row references it and that no writer can index it
    /// meanwhile: it holds the maintenance lock exclusively after committing the row's removal (garbage
    /// collection, eviction, repair), or it created the file itself and never indexed it (a failed push).
    public func remove(_ digest: Digest) throws {
        mappings.forget(digest)
        let path = path(of: digest)
        guard unlink(path) == 0 || errno == ENOENT else { throw FileAccessError(.remove, path: path) }
    }

    /// Whether any blob file is on disk, whatever the index says: stops at the first one found.
    func holdsAnyFile() -> Bool {
        let manager = FileManager.default
        let prefixes = (try? manager.contentsOfDirectory(atPath: blobsDirectory.path)) ?? []
        return prefixes.contains { prefix in
            !((try? manager.contentsOfDirectory(atPath: blobsDirectory.path + "/" + prefix)) ?? []).isEmpty
        }
    }

    /// Every blob file on disk, with its size and modification time, whatever the index says.
    public func allFiles() throws -> [(digest: Digest?, path: String, size: Int, modified: Date)] {
        var files: [(Digest?, String, Int, Date)] = []
        let manager = FileManager.default
        guard manager.fileExists(atPath: blobsDirectory.path) else { return [] }
        for prefix in try manager.contentsOfDirectory(atPath: blobsDirectory.path).sorted() {
            let folder = blobsDirectory.path + "/" + prefix
            var folderInfo = stat()
            guard lstat(folder, &folderInfo) == 0 else { continue }
            guard folderInfo.st_mode & S_IFMT == S_IFDIR else {
                // Not a prefix folder: something else put a file here, which no blob can be.
                files.append(
                    (nil, folder, Int(folderInfo.st_size),
                     Date(timeIntervalSince1970: TimeInterval(folderInfo.st_mtim.tv_sec))))
                continue
            }
            for name in try manager.contentsOfDirectory(atPath: folder).sorted() {
                let path = folder + "/" + name
                var info = stat()
                guard stat(path, &info) == 0 else { continue }
                let digest = Digest(name).flatMap { $0.hex.hasPrefix(prefix) ? $0 : nil }
                files.append(
                    (digest, path, Int(info.st_size), Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))))
            }
        }
        return files
    }

    /// The folder a blob's file goes in, created when missing. A new folder's entry is flushed at once, so
    /// the blob files linked into it and flushed with it cannot vanish in a crash with their folder.
    func prefixFolder(of digest: Digest) throws -> String {
        let folder = blobsDirectory.path + "/" + digest.hex.prefix(2)
        if mkdir(folder, 0o755) == 0 {
            try WritableFile.syncDirectory(blobsDirectory.path)
        } else if errno != EEXIST {
            throw FileAccessError(.createDirectory, path: folder)
        }
        return folder
    }

    /// Writes `bytes` to a temporary file and links it into place. Returns false when the blob appeared
    /// meanwhile (another writer won; its file is equally valid).
    private func place(_ bytes: UnsafeRawBufferPointer, digest: Digest) throws -> Bool {
        let temporary = temporaryDirectory.path + "/\(digest.hex).\(getpid()).\(UInt32.random(in: .min ... .max))"
        defer { unlink(temporary) }
        let file = try WritableFile(creating: temporary, exclusive: true)
        try file.write(bytes)
        try file.sync()
        try file.close()
        return try link(temporary, digest: digest)
    }

    /// Links a flushed file holding the blob's bytes to the blob's path; false when the blob already exists.
    private func link(_ file: String, digest: Digest) throws -> Bool {
        let folder = try prefixFolder(of: digest)
        let finalPath = folder + "/" + digest.hex
        guard Glibc.link(file, finalPath) == 0 else {
            guard errno == EEXIST else { throw FileAccessError(.link, path: finalPath) }
            // The other writer's entry is flushed here too, before the caller indexes the blob.
            try WritableFile.syncDirectory(folder)
            return false
        }
        try WritableFile.syncDirectory(folder)
        return true
    }
}
