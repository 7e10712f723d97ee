import Foundation
import LoraStoreCore

/// Weight tensors from safetensors files already on the machine, for the codec group: trained weights
/// compress differently from generated N(0, 0.02) ones, and a machine that has a model should show how.
/// Nothing is downloaded; without such files the group says where it looked.
enum RealWeights {
    /// Files sampled at most, so that a large model cache does not stretch the run.
    static let maximumFiles = 3
    /// A file's tensors of one type are sampled only when they hold at least this many bytes.
    static let minimumSampleBytes = 1 << 20

    /// Where the benchmark looks when `--real-weights` is not given: the Hugging Face hub cache
    /// (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    static func defaultLocations(environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        if let cache = environment["HF_HUB_CACHE"] { return [URL(fileURLWithPath: cache)] }
        if let home = environment["HF_HOME"] { return [URL(fileURLWithPath: home).appending(path: "hub")] }
        return [FileManager.default.homeDirectoryForCurrentUser.appending(path: ".cache/huggingface/hub")]
    }

    /// The `.safetensors` files at or under `locations`, symbolic links resolved (the hub cache links each
    /// snapshot's files to its blobs), each once, in path order.
    static func files(under locations: [URL]) -> [URL] {
        var found: [String: URL] = [:]
        for location in locations {
            let resolved = location.resolvingSymlinksInPath()
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: resolved.path, isDirectory: &isFolder) else { continue }
            guard isFolder.boolValue else {
                if location.pathExtension == "safetensors" { found[resolved.path] = found[resolved.path] ?? location }
                continue
            }
            let walker = FileManager.default.enumerator(at: location, includingPropertiesForKeys: nil)
            while let file = walker?.nextObject() as? URL {
                guard file.pathExtension == "safetensors" else { continue }
                let target = file.resolvingSymlinksInPath()
                found[target.path] = found[target.path] ?? file
            }
        }
        return found.values.sorted { $0.path < $1.path }
    }

    /// Up to `size` bytes of each float type's weight matrices in `file` (two or more dimensions, names
    /// ending in `weight`), concatenated in file order: one sample per type that has at least
    /// ``minimumSampleBytes``.
    ///
    /// - Throws: ``SafetensorsError`` or ``FileAccessError`` naming the file when it cannot be read.
    static func samples(from file: URL, size: Int) throws -> [CodecSample] {
        let safetensors = try SafetensorsFile(contentsOf: file)
        var samples: [CodecSample] = []
        for dtype in CodecBenchmarks.dtypes {
            let matrices = safetensors.tensors.filter {
                $0.dtype == dtype && $0.shape.count >= 2 && $0.name.hasSuffix("weight")
            }
            var total = 0
            var chosen: [TensorInfo] = []
            for tensor in matrices where total < size {
                chosen.append(tensor)
                total += tensor.byteCount
            }
            let width = dtype.byteWidth ?? 1
            let byteCount = min(total, size) / width * width
            guard byteCount >= minimumSampleBytes else { continue }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
            var filled = 0
            for tensor in chosen where filled < byteCount {
                let bytes = safetensors.bytes(of: tensor)
                let count = min(bytes.count, byteCount - filled)
                UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + count])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                filled += count
            }
            samples.append(CodecSample(
                label: "\(dtype.rawValue), \(name(of: file))", dtype: dtype, bytes: buffer,
                origin: "\(Format.bytes(byteCount)) of \(chosen.count) weight matrices of \(file.path)"))
        }
        return samples
    }

    /// A short name for a file: `org/model file` inside the hub cache, else its folder and name.
    static func name(of file: URL) -> String {
        let components = file.pathComponents
        if let repository = components.last(where: { $0.hasPrefix("models--") }) {
            let model = repository.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
            return "\(model) \(file.lastPathComponent)"
        }
        return "\(file.deletingLastPathComponent().lastPathComponent)/\(file.lastPathComponent)"
    }
}
