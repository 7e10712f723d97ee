import Foundation

/// One file of a model folder as a registry server sends it, assembled from blobs without a copy on disk:
/// a small file is one blob, a safetensors file is its header bytes followed by its tensors' blobs in
/// order, and a generated shard index is bytes in memory.
public struct ServedFile: Sendable, Hashable {
    /// Where the bytes come from.
    public enum Source: Sendable, Hashable {
        /// A small file kept as one blob.
        case blob(Digest)
        /// A safetensors file: header bytes, then each tensor blob (digest and size) in order.
        case safetensors(header: [UInt8], tensors: [Segment])
        /// Bytes generated from the layout (a build's shard index).
        case bytes(Data)
    }

    /// A tensor blob inside a safetensors file.
    public struct Segment: Sendable, Hashable {
        public var digest: Digest
        public var size: Int

        public init(digest: Digest, size: Int) {
            self.digest = digest
            self.size = size
        }
    }

    /// The file name inside the model folder.
    public var name: String
    /// The file's size in bytes.
    public var size: Int
    /// The SHA-256 of the whole file, when known (a small file's blob digest, a build's recorded file
    /// digest); nil until someone hashes it.
    public var digest: Digest?
    public var source: Source

    public init(name: String, size: Int, digest: Digest?, source: Source) {
        self.name = name
        self.size = size
        self.digest = digest
        self.source = source
    }

    /// The blobs the file's bytes are read from, in order.
    public var blobs: [Digest] {
        switch source {
        case .blob(let digest): [digest]
        case .safetensors(_, let tensors): tensors.map(\.digest)
        case .bytes: []
        }
    }

    /// Whether the file holds tensors (what Hugging Face keeps in LFS).
    public var isTensorFile: Bool {
        if case .safetensors = source { true } else { false }
    }
}
