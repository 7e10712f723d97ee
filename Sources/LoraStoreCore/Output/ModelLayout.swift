/// How a model's tensors are laid out in safetensors files: one `model.safetensors`, or shards
/// `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json` when a maximum shard size is set
/// and exceeded. Shards take tensors in order, each up to the maximum (a tensor larger than it gets a
/// shard of its own), as `transformers` does. The same tensors and metadata always give the same bytes.
public struct ModelLayout: Sendable {
    /// One safetensors file of the layout.
    public struct File: Sendable {
        public let name: String
        public let header: SafetensorsHeader
    }

    public let files: [File]
    /// The shard index, when there are several files.
    public let shardIndex: ShardIndex?

    /// The single-file name.
    public static let singleFileName = "model.safetensors"

    /// A layout of given files (e.g. a pushed model's own shard layout).
    public init(files: [File], shardIndex: ShardIndex?) {
        self.files = files
        self.shardIndex = shardIndex
    }

    /// The layout of a stored base or adapter: its tensors in their original files, in order, each file with
    /// its recorded `__metadata__` (and `format: pt`). A sharded base's own index is among its small files.
    public init(manifest: Manifest) throws {
        var groups: [(name: String, tensors: [(name: String, dtype: DType, shape: [Int])])] = []
        for tensor in manifest.tensors {
            if groups.last?.name != tensor.file {
                groups.append((tensor.file, []))
            }
            groups[groups.count - 1].tensors.append((tensor.name, tensor.dtype, tensor.shape))
        }
        files = try groups.map { group in
            var metadata = manifest.fileMetadata[group.name] ?? [:]
            metadata["format"] = "pt"
            return File(
                name: group.name, header: try SafetensorsHeader(tensors: group.tensors, metadata: metadata, label: group.name))
        }
        shardIndex = nil
    }

    /// Lays out `tensors` (in order) with `metadata` in every file's `__metadata__` (`format: pt` added).
    public init(
        tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String], maxShardSize: Int?
    ) throws {
        var metadata = metadata
        metadata["format"] = "pt"
        let sizes = tensors.map { $0.dtype.byteCount(elementCount: $0.shape.reduce(1, *)) ?? 0 }
        var groups: [[Int]] = [[]]
        var groupSize = 0
        for (index, size) in sizes.enumerated() {
            if let maxShardSize, groupSize > 0, groupSize + size > maxShardSize {
                groups.append([])
                groupSize = 0
            }
            groups[groups.count - 1].append(index)
            groupSize += size
        }
        if groups.count == 1 {
            files = [File(name: Self.singleFileName, header: try SafetensorsHeader(tensors: tensors, metadata: metadata))]
            shardIndex = nil
            return
        }
        var files: [File] = []
        var weightMap: [String: String] = [:]
        for (number, group) in groups.enumerated() {
            let name = String(format: "model-%05d-of-%05d.safetensors", number + 1, groups.count)
            let entries = group.map { tensors[$0] }
            files.append(File(name: name, header: try SafetensorsHeader(tensors: entries, metadata: metadata, label: name)))
            for entry in entries { weightMap[entry.name] = name }
        }
        self.files = files
        shardIndex = try ShardIndex(
            totalSize: sizes.reduce(0, +),
            totalParameters: tensors.reduce(0) { $0 + $1.shape.reduce(1, *) },
            weightMap: weightMap)
    }
}
