import GRDB

/// What a build's first materialization produced: every output tensor (in order, with the shard it went to)
/// and every output file, each with its digest. Kept after eviction so a rebuild can be checked.
struct BuildOutput: Sendable {
    struct Tensor: Sendable {
        var name: String
        var dtype: DType
        var shape: [Int]
        var file: String
        var digest: Digest
        var size: Int
        var changed: Bool
    }

    struct File: Sendable {
        var name: String
        var digest: Digest
        var size: Int
    }

    var tensors: [Tensor]
    var files: [File]

    /// The recorded output of a build, or nil if it was never materialized.
    static func fetch(_ db: Database, build: Digest) throws -> BuildOutput? {
        let rows = try Row.fetchAll(
            db, sql: "SELECT * FROM build_output WHERE build_digest = ? ORDER BY kind, position", arguments: [build])
        guard !rows.isEmpty else { return nil }
        var output = BuildOutput(tensors: [], files: [])
        for row in rows {
            let kind: String = row["kind"]
            if kind == "tensor" {
                let dtypeName: String = row["dtype"]
                let shapeText: String = row["shape"]
                output.tensors.append(
                    Tensor(
                        name: row["name"], dtype: DType(rawValue: dtypeName) ?? .u8,
                        shape: shapeText.split(separator: ",").compactMap { Int($0) }, file: row["file"],
                        digest: row["digest"], size: row["size"], changed: row["changed"]))
            } else {
                output.files.append(File(name: row["name"], digest: row["digest"], size: row["size"]))
            }
        }
        return output
    }

    /// The safetensors layout these outputs were written in: the same tensors, shard size and provenance, so
    /// a model assembled from blobs has the bytes of the first materialization.
    func layout(build: Digest, recipe: BuildRecipe) throws -> ModelLayout {
        try ModelLayout(
            tensors: tensors.map { ($0.name, $0.dtype, $0.shape) },
            metadata: Store.buildProvenance(build, recipe: recipe), maxShardSize: recipe.options.maxShardSize)
    }

    /// Records the output of a first materialization.
    func insert(_ db: Database, build: Digest) throws {
        for (position, tensor) in tensors.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO build_output (build_digest, kind, position, name, dtype, shape, file, digest, size, changed)
                    VALUES (?, 'tensor', ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    build, position, tensor.name, tensor.dtype.rawValue, tensor.shape.map(String.init).joined(separator: ","),
                    tensor.file, tensor.digest, tensor.size, tensor.changed,
                ])
        }
        for (position, file) in files.enumerated() {
            try db.execute(
                sql: "INSERT INTO build_output (build_digest, kind, position, name, digest, size) VALUES (?, 'file', ?, ?, ?, ?)",
                arguments: [build, position, file.name, file.digest, file.size])
        }
    }
}
