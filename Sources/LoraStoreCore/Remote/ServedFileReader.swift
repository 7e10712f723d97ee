import Foundation

/// Reads a range of a ``ServedFile`` in chunks, opening each blob only when the range reaches it, so a
/// request for the tail of a large file reads nothing before it.
///
/// Used by one task at a time (not thread-safe); create one per response.
public final class ServedFileReader {
    private enum Piece {
        case bytes([UInt8])
        case blob(Digest, size: Int)
    }

    private let store: Store
    private let pieces: [(start: Int, piece: Piece)]
    private var position: Int
    private let end: Int
    private var open: (index: Int, contents: BlobContents)?

    /// Prepares to read `range` (clamped to the file) of `file`.
    public init(_ file: ServedFile, in store: Store, range: Range<Int>? = nil) {
        self.store = store
        var pieces: [(Int, Piece)] = []
        switch file.source {
        case .blob(let digest):
            pieces = [(0, .blob(digest, size: file.size))]
        case .bytes(let data):
            pieces = [(0, .bytes(Array(data)))]
        case .safetensors(let header, let tensors):
            pieces = [(0, .bytes(header))]
            var offset = header.count
            for tensor in tensors {
                pieces.append((offset, .blob(tensor.digest, size: tensor.size)))
                offset += tensor.size
            }
        }
        self.pieces = pieces
        let requested = range ?? 0..<file.size
        position = max(0, min(requested.lowerBound, file.size))
        end = max(position, min(requested.upperBound, file.size))
    }

    /// The next chunk of at most `maximum` bytes, or nil at the end of the range.
    public func next(maximum: Int = 1 << 20) throws -> [UInt8]? {
        guard position < end else { return nil }
        guard let index = pieces.lastIndex(where: { $0.start <= position }) else { return nil }
        let (start, piece) = pieces[index]
        let chunk: [UInt8]
        switch piece {
        case .bytes(let bytes):
            let from = position - start
            chunk = Array(bytes[from..<min(bytes.count, from + min(maximum, end - position))])
        case .blob(let digest, let size):
            let contents = try contents(of: digest, size: size, index: index)
            let from = position - start
            let count = min(size - from, maximum, end - position)
            chunk = Array(UnsafeRawBufferPointer(rebasing: contents.bytes[from..<from + count]))
        }
        guard !chunk.isEmpty else { return nil }
        position += chunk.count
        return chunk
    }

    private func contents(of digest: Digest, size: Int, index: Int) throws -> BlobContents {
        if let open, open.index == index { return open.contents }
        guard let codec = try store.blobInfo(digest)?.codec else { throw BlobStoreError.missing(digest) }
        let contents = try store.blobs.read(digest, codec: codec, size: size)
        open = (index, contents)
        return contents
    }
}
