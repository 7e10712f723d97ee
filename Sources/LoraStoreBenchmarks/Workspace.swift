import Foundation
import LoraStoreCore

/// The run's scratch folder: generated models (made once per type and shared by the groups) and stores.
final class Workspace {
    /// Something generated, and how long it took.
    struct Generated {
        let description: String
        let bytes: Int
        let seconds: Double
    }

    let root: URL
    private let size: Int
    private(set) var generated: [Generated] = []
    private var bases: [DType: (model: SyntheticModel, folder: URL)] = [:]

    init(options: BenchmarkOptions) throws {
        let parent = options.workDirectory ?? FileManager.default.temporaryDirectory
        root = parent.appending(path: "lorastore-bench-\(getpid())")
        size = options.size
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// The generated base of `dtype` (about the run's size), written on first use.
    func base(_ dtype: DType) throws -> (model: SyntheticModel, folder: URL) {
        if let base = bases[dtype] { return base }
        let model = SyntheticModel.sized(bytes: size, dtype: dtype, seed: 1)
        let folder = root.appending(path: "base-\(dtype.rawValue.lowercased())")
        let seconds = try Timing.seconds { try model.write(to: folder) }
        let d = model.dimensions
        generated.append(Generated(
            description: "base \(dtype.rawValue): hidden \(d.hiddenSize), intermediate \(d.intermediateSize), "
                + "\(model.layers) layers, vocab \(d.vocabularySize)",
            bytes: model.byteCount, seconds: seconds))
        print("generated \(folder.lastPathComponent): \(Format.bytes(model.byteCount)) in \(Format.seconds(seconds)) "
            + "(\(Format.rate(Double(model.byteCount) / seconds)))")
        Self.flush()
        bases[dtype] = (model, folder)
        return (model, folder)
    }

    /// A path under the workspace, with anything already there removed.
    func fresh(_ name: String) -> URL {
        let url = root.appending(path: name)
        try? FileManager.default.removeItem(at: url)
        return url
    }

    /// Writes dirty pages back so that a previous case's writeback does not run during the next one.
    static func flush() {
        sync()
    }

    func removeAll() {
        try? FileManager.default.removeItem(at: root)
    }
}
