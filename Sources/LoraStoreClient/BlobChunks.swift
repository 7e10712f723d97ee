import LoraStoreCore
import NIOCore

/// A blob of a ``PushPackage`` as an upload body: chunks copied from the mapped file as the connection
/// takes them, so a large tensor is never held in memory whole.
struct BlobChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let package: PushPackage
    let digest: Digest
    let counter: TransferCounter
    var chunkSize = 4 << 20

    struct AsyncIterator: AsyncIteratorProtocol {
        let chunks: BlobChunks
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            let size = chunks.package.size(of: chunks.digest)
            guard offset < size else { return nil }
            let range = offset..<Swift.min(size, offset + chunks.chunkSize)
            let buffer = try chunks.package.withBytes(of: chunks.digest) { bytes in
                ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
            }
            offset = range.upperBound
            chunks.counter.add(range.count)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: self) }
}
