import Foundation
import Testing
@testable import LoraStoreCore

/// Blobs a registry receives, indexed beside writers that may fail and clean up.
@Suite("Received blobs")
struct ReceivedBlobTests {
    /// An upload found the blob's file on disk, linked there by another writer, which then failed and
    /// removed the file before the upload's transaction (its clean-up removes files no row names). The
    /// upload writes the file again: an index row never points at a missing file.
    @Test func anUploadWritesAgainTheFileAFailedWriterRemoved() throws {
        try TemporaryDirectory.with { directory in
            let store = try TestStore(in: directory).store
            let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let digest = Digest(of: bytes)
            let spool = store.blobs.temporaryDirectory.appending(path: "upload.spool")
            try Data(bytes).write(to: spool)
            let otherWriters = try bytes.withUnsafeBytes { try store.blobs.write($0, digest: digest, encoding: .raw) }
            let found = try bytes.withUnsafeBytes {
                try store.blobs.write($0, digest: digest, encoding: .raw, spooledFile: spool.path)
            }
            #expect(otherWriters.created && !found.created)
            store.removeUnindexed([digest], after: BlobStoreError.missing(digest))
            #expect(store.blobs.storedSize(of: digest) == nil)

            let restored = try bytes.withUnsafeBytes { raw in
                try store.restoreIfRemoved(found, bytes: raw, encoding: .raw, spooledFile: spool.path)
            }
            #expect(restored.created, "so that a failed index write removes it again")
            #expect(store.blobs.storedSize(of: digest) == bytes.count)
            let indexed = try bytes.withUnsafeBytes { raw in
                try store.storeReceivedBlob(raw, digest: digest, encoding: .raw, spooledFile: spool.path, repository: "acme/upload")
            }
            #expect(!indexed.created)
            #expect(try store.blobInfo(digest)?.logicalSize == bytes.count)
            try FileManager.default.removeItem(at: spool)
            #expect(try store.verify(deep: true).faults.map { "\($0)" } == [])
        }
    }
}
