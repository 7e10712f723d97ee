import Foundation
import Testing
@testable import LoraStoreCore

@Suite("Blob files")
struct BlobStoreTests {
    @Test func writesOnceAndVerifiesOnDemand() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            let values = (0..<4096).map { Float(sin(Double($0) / 50)) * 0.02 }
            try values.withUnsafeBytes { bytes in
                let digest = Digest(of: bytes)
                let first = try blobs.write(bytes, digest: digest, encoding: .compressed(elementWidth: 4))
                #expect(first.created && first.codec == .byteGroupedZlib && first.storedSize < bytes.count)
                let again = try blobs.write(bytes, digest: digest, encoding: .raw)
                #expect(!again.created && again.codec == .byteGroupedZlib, "an existing blob keeps its encoding")
                let contents = try blobs.read(digest, codec: first.codec, verify: true)
                withExtendedLifetime(contents) { #expect(Array(contents.bytes) == Array(bytes)) }
                #expect(try FileManager.default.contentsOfDirectory(atPath: blobs.temporaryDirectory.path).isEmpty)

                let wrong = Digest(of: [UInt8(1)])
                _ = try blobs.write(bytes, digest: wrong, encoding: .raw)
                #expect(throws: BlobStoreError.digestMismatch(expected: wrong, actual: digest)) {
                    try blobs.read(wrong, codec: .raw, verify: true)
                }
            }
        }
    }

    /// An untrained LoRA B is all zeros: the exponent codec would keep its sign and low mantissa bits (a quarter
    /// of BF16's bytes), so such near-constant tensors fall back to zlib, while weights keep the exponent codec.
    @Test(arguments: [FloatLayout.bf16, .f16, .f32])
    func nearConstantTensorsTakeTheSmallerEncoding(layout: FloatLayout) throws {
        let width = layout == .f32 ? 4 : 2
        let zeros = [UInt8](repeating: 0, count: 64 * 1024 * width)
        let constant = zeros.withUnsafeBytes { BlobStore.encode($0, as: .floatingPoint(layout)) }
        #expect(constant.codec == .byteGroupedZlib)
        #expect((constant.encoded?.count ?? zeros.count) < zeros.count / 100)

        var generator = SplitMix64(state: 41)
        let values = (0..<(64 * 1024)).map { _ in Float(generator.nextUnit() * 0.1 - 0.05) }
        let weights: [UInt8] = values.withUnsafeBytes { raw in
            switch layout {
            case .f32: return Array(raw)
            case .f16: return values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
            case .bf16: return values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
            }
        }
        #expect(weights.withUnsafeBytes { BlobStore.encode($0, as: .floatingPoint(layout)) }.codec == .exponentANS)
    }

    /// An upload's spool file becomes the blob when it is stored raw (one write of the bytes, not two);
    /// a compressed blob is a new file, and the spool file is left to the caller either way.
    @Test func rawSpooledBlobsAreLinkedNotCopied() throws {
        try TemporaryDirectory.with { directory in
            let blobs = BlobStore(root: directory)
            try blobs.createDirectories()
            for (index, encoding) in [BlobEncoding.raw, .compressed(elementWidth: 1)].enumerated() {
                let bytes = [UInt8](repeating: UInt8(index), count: 10_000)
                let spool = blobs.temporaryDirectory.path + "/spool-\(index)"
                let file = try WritableFile(creating: spool, exclusive: true)
                try file.write(bytes)
                try file.close()
                let digest = Digest(of: bytes)
                let stored = try bytes.withUnsafeBytes {
                    try blobs.write($0, digest: digest, encoding: encoding, spooledFile: spool)
                }
                var blobInfo = stat(), spoolInfo = stat()
                #expect(stat(blobs.path(of: digest), &blobInfo) == 0 && stat(spool, &spoolInfo) == 0)
                #expect((blobInfo.st_ino == spoolInfo.st_ino) == (encoding == .raw), "\(encoding)")
                #expect(stored.codec == (encoding == .raw ? .raw : .byteGroupedZlib))
                let contents = try blobs.read(digest, codec: stored.codec, verify: true)
                withExtendedLifetime(contents) { #expect(Array(contents.bytes) == bytes) }
            }
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full"), "this system has no /dev/full to fill"))
    func reportsAFullDiskNamingTheFile() throws {
        let file = try WritableFile(creating: "/dev/full")
        let error = #expect(throws: FileAccessError.self) { try file.write([UInt8](repeating: 0, count: 1 << 16)) }
        #expect(error?.isOutOfSpace == true)
        #expect(error?.description.contains("/dev/full") == true)
        #expect(error?.description.contains("No space left on device") == true)
    }
}
