import Foundation
import GRDB
@testable import LoraStoreCore

/// A store in a temporary folder, with shortcuts to push the PEFT fixtures.
struct TestStore {
    let directory: URL
    let store: Store

    init(in directory: URL) throws {
        self.directory = directory
        store = try Store(root: directory.appending(path: "store"))
    }

    /// Pushes a fixture folder (relative to the fixtures root) to `reference`.
    @discardableResult
    func push(_ fixture: String, as reference: String, base: String? = nil) throws -> PushResult {
        try store.push(
            Fixtures.url(fixture), to: try Reference(parsing: reference),
            options: PushOptions(base: try base.map { try Reference(parsing: $0) }))
    }

    /// Pushes `base_fp32` as `micro/base:fp32` and returns the store.
    func withFP32Base() throws -> TestStore {
        try push("base_fp32", as: "micro/base:fp32")
        return self
    }

    /// Pushes `base_fp32` as `micro/base:fp32` and the rank-8 q/v adapter `a_r8_qv` against it as `acme/a`,
    /// and returns the store.
    func withFP32BaseAndAdapterA() throws -> TestStore {
        try withFP32Base().push("adapters/a_r8_qv", as: "acme/a", base: "micro/base:fp32")
        return self
    }

    /// Merges and reads back every tensor of the output folder.
    func merge(
        base: String, adapters: [(String, Double)], options: MergeOptions = MergeOptions(), name: String = "merged"
    ) throws -> [String: LoadedTensor] {
        let destination = directory.appending(path: name)
        try store.merge(
            base: try Reference(parsing: base),
            adapters: try adapters.map { (try Reference(parsing: $0.0), $0.1) },
            options: options, to: destination)
        return try LoadedTensor.all(in: destination)
    }

    /// Everything a store holds, to compare before and after an operation: every blob file's name and
    /// bytes, every temporary file left (a blob staged but never published), and every index row.
    func snapshot() throws -> StoreSnapshot {
        var files: [String: Digest] = [:]
        for folder in [store.blobs.blobsDirectory, store.blobs.temporaryDirectory] {
            guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in enumerator where !url.hasDirectoryPath {
                files[url.path] = Digest(of: try Data(contentsOf: url))
            }
        }
        let rows = try store.index.database.read { db in
            try ["blob", "manifest", "manifest_blob", "repository", "tag", "adapter", "setting"].map { table in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2").map(\.description).joined(separator: "\n")
            }
        }
        return StoreSnapshot(files: files, rows: rows)
    }
}

/// Blob files and index rows of a store at one moment.
struct StoreSnapshot: Equatable {
    let files: [String: Digest]
    let rows: [String]
}

/// A tensor read back from a safetensors file.
struct LoadedTensor: Equatable {
    let dtype: DType
    let shape: [Int]
    let bytes: [UInt8]

    /// The values as F32 (from F32, F16 or BF16). Any other dtype stops the test run with a message
    /// rather than yielding unconverted values that could match another tensor's by accident.
    var floats: [Float] {
        let count = shape.reduce(1, *)
        return bytes.withUnsafeBytes { source in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                do {
                    try FloatConversion.convert(
                        source.baseAddress!, from: dtype, to: buffer.baseAddress!, as: .f32, count: count)
                } catch {
                    preconditionFailure("cannot read a \(dtype) tensor of shape \(shape) as F32: \(error)")
                }
                initialized = count
            }
        }
    }

    /// Every tensor of a safetensors file.
    static func file(_ url: URL) throws -> [String: LoadedTensor] {
        let file = try SafetensorsFile(contentsOf: url)
        var tensors: [String: LoadedTensor] = [:]
        for info in file.tensors {
            tensors[info.name] = LoadedTensor(dtype: info.dtype, shape: info.shape, bytes: Array(file.bytes(of: info)))
        }
        return tensors
    }

    /// Every tensor of every safetensors file in a folder.
    static func all(in folder: URL) throws -> [String: LoadedTensor] {
        var tensors: [String: LoadedTensor] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".safetensors") {
            tensors.merge(try file(folder.appending(path: name))) { first, _ in first }
        }
        return tensors
    }
}

/// The largest absolute difference between two tensors' values.
func maxDifference(_ a: LoadedTensor, _ b: LoadedTensor) -> Float {
    zip(a.floats, b.floats).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

extension Store {
    /// `NAME:TAG lost DIGEST` for every blob a tagged manifest references that has no file: what concurrent
    /// pushes, removals and garbage collections must never leave behind.
    func blobsMissingFromTaggedManifests() throws -> [String] {
        try list().flatMap { entry in
            let stored = try resolve(try Reference(parsing: "\(entry.repository):\(entry.tag)"))
            return stored.manifest.blobDigests
                .filter { blobs.storedSize(of: $0) == nil }
                .map { "\(entry.repository):\(entry.tag) lost \($0)" }
        }
    }
}
