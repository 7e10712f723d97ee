import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Blob mappings kept between reads")
struct BlobMappingsTests {
    /// Writes `count` bytes of `value` as a blob file and returns its digest.
    private func writeBlob(_ blobs: BlobStore, value: UInt8, count: Int) throws -> Digest {
        let bytes = [UInt8](repeating: value, count: count)
        return try bytes.withUnsafeBytes { raw in
            let digest = Digest(of: raw)
            _ = try blobs.write(raw, digest: digest, encoding: .raw)
            return digest
        }
    }

    /// A second read of a raw blob reuses the mapping: the same address, no new page tables to fill.
    @Test func rawReadsReuseTheMapping() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            let digest = try writeBlob(blobs, value: 7, count: 10_000)
            let first = try blobs.read(digest, codec: .raw)
            let second = try blobs.read(digest, codec: .raw)
            withExtendedLifetime((first, second)) {
                #expect(first.bytes.baseAddress == second.bytes.baseAddress)
                #expect(second.bytes.count == 10_000 && second.bytes.allSatisfy { $0 == 7 })
            }
            let verified = try blobs.read(digest, codec: .raw, verify: true)
            withExtendedLifetime((first, verified)) {
                #expect(verified.bytes.baseAddress != first.bytes.baseAddress, "a verifying read maps its own")
            }
        }
    }

    /// Another process removing a blob file (a `gc` beside a server) does not free its disk space while the
    /// file stays mapped: the next read after the sweep interval releases that mapping, whatever it reads.
    @Test func aReadReleasesTheMappingsOfFilesRemovedElsewhere() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            let removed = try writeBlob(blobs, value: 1, count: 8192)
            let kept = try writeBlob(blobs, value: 2, count: 4096)
            let mappings = BlobMappings(sweepInterval: .zero)
            _ = try mappings.mapping(of: removed, path: blobs.path(of: removed))
            #expect(mappings.mappedBytes == 8192)
            #expect(unlink(blobs.path(of: removed)) == 0, "removed without telling the mappings, as another process does")
            _ = try mappings.mapping(of: kept, path: blobs.path(of: kept))
            #expect(mappings.mappedBytes == 4096)
        }
    }

    /// A blob file replaced or truncated since it was mapped is mapped again: a kept mapping never hands out
    /// bytes the file no longer has (reading past a truncated file's end would crash the process).
    @Test func aChangedFileIsMappedAgain() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            let digest = try writeBlob(blobs, value: 1, count: 8192)
            let path = blobs.path(of: digest)
            _ = try blobs.read(digest, codec: .raw)

            #expect(truncate(path, 4096) == 0)
            let truncated = try blobs.read(digest, codec: .raw)
            withExtendedLifetime(truncated) { #expect(truncated.bytes.count == 4096) }

            let replacement = directory.appending(path: "replacement").path
            try Data(repeating: 2, count: 8192).write(to: URL(fileURLWithPath: replacement))
            #expect(rename(replacement, path) == 0)
            let replaced = try blobs.read(digest, codec: .raw)
            withExtendedLifetime(replaced) { #expect(replaced.bytes.count == 8192 && replaced.bytes.allSatisfy { $0 == 2 }) }

            try blobs.remove(digest)
            #expect(blobs.mappings.mappedBytes == 0, "a removed blob's mapping is released")
            #expect(throws: BlobStoreError.missing(digest)) { try blobs.read(digest, codec: .raw) }
        }
    }

    /// Past the capacity, the least recently used mappings are released first.
    @Test func capacityBoundsTheMappedBytes() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            let digests = try (0..<4).map { try writeBlob(blobs, value: UInt8($0), count: 1000) }
            let mappings = BlobMappings(capacity: 2500)
            func map(_ index: Int) throws -> MappedFile {
                try mappings.mapping(of: digests[index], path: blobs.path(of: digests[index]))
            }
            let first = try map(0)
            let second = try map(1)
            #expect(try map(0) === first, "touched again: now the second is the least recently used")
            _ = try map(2)
            #expect(mappings.mappedBytes == 2000)
            #expect(try map(0) === first)
            #expect(try map(1) !== second, "the least recently used mapping was released")
            #expect(mappings.mappedBytes <= 2500)
        }
    }
}
