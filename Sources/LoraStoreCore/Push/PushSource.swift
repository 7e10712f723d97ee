import Foundation

/// What a push reads: a Hugging Face model folder, a single `.safetensors` file, or a PEFT adapter folder.
struct PushSource {
    /// Base or adapter, detected from the files unless the user said.
    let kind: ManifestKind
    /// The folder the files are relative to.
    let folder: URL
    /// The safetensors files, in shard order.
    let tensorFiles: [URL]
    /// The shard index, when the model is sharded.
    let shardIndex: URL?
    /// Small files kept verbatim (configs, tokenizer files, the shard index, `adapter_config.json`...).
    let smallFiles: [URL]
    /// Files left out, with the reason (pickle weights, hidden files, sub-folders).
    let skipped: [String]

    static let shardIndexName = "model.safetensors.index.json"
    static let adapterConfigName = "adapter_config.json"
    static let adapterWeightsName = "adapter_model.safetensors"
    private static let foreignWeightExtensions: Set<String> = ["bin", "pt", "pth", "ckpt", "h5", "msgpack", "gguf", "onnx"]

    /// Looks at `path` and decides what it holds; `kind` overrides detection.
    static func inspect(_ path: URL, kind requested: ManifestKind?) throws -> PushSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw StoreError.invalidInput(path: path.path, reason: "no such file or folder")
        }
        guard isDirectory.boolValue else {
            guard path.pathExtension == "safetensors" else {
                throw StoreError.invalidInput(
                    path: path.path, reason: "not a .safetensors file or a model or adapter folder")
            }
            // A pipe or device would be read forever, or would not map.
            guard (try? path.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else {
                throw StoreError.invalidInput(path: path.path, reason: "not a regular file")
            }
            if requested == .adapter {
                throw StoreError.invalidInput(
                    path: path.path, reason: "an adapter is pushed as a folder with \(adapterConfigName)")
            }
            return PushSource(
                kind: .base, folder: path.deletingLastPathComponent(), tensorFiles: [path], shardIndex: nil,
                smallFiles: [], skipped: [])
        }
        let entries = try FileManager.default.contentsOfDirectory(at: path, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        var tensorFiles: [URL] = []
        var smallFiles: [URL] = []
        var skipped: [String] = []
        for entry in entries {
            let name = entry.lastPathComponent
            // Symbolic links count as the files they point to: a Hugging Face cache snapshot is made of them.
            let isFile = (try? entry.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) ?? false
            if name.hasPrefix(".") {
                skipped.append("\(name) (hidden)")
            } else if !isFile {
                skipped.append("\(name) (not a regular file)")
            } else if entry.pathExtension == "safetensors" {
                tensorFiles.append(entry)
            } else if foreignWeightExtensions.contains(entry.pathExtension) {
                skipped.append("\(name) (weights in a format other than safetensors)")
            } else {
                smallFiles.append(entry)
            }
        }
        let names = Set(entries.map(\.lastPathComponent))
        let detected: ManifestKind = names.contains(adapterConfigName) ? .adapter : .base
        let kind = requested ?? detected
        switch kind {
        case .adapter:
            guard names.contains(adapterConfigName) else {
                throw StoreError.invalidInput(path: path.path, reason: "no \(adapterConfigName) in the adapter folder")
            }
            guard names.contains(adapterWeightsName) else {
                throw StoreError.invalidInput(
                    path: path.path,
                    reason: "no \(adapterWeightsName) in the adapter folder (pickle adapter_model.bin is not read: save with safe_serialization=True)")
            }
            let weights = path.appending(path: adapterWeightsName)
            let extra = tensorFiles.filter { $0.lastPathComponent != adapterWeightsName }
            return PushSource(
                kind: .adapter, folder: path, tensorFiles: [weights], shardIndex: nil, smallFiles: smallFiles,
                skipped: skipped + extra.map { "\($0.lastPathComponent) (not the adapter's weights)" })
        case .base:
            guard !tensorFiles.isEmpty else {
                throw StoreError.invalidInput(path: path.path, reason: "no .safetensors files in the folder")
            }
            let shardIndex = names.contains(shardIndexName) ? path.appending(path: shardIndexName) : nil
            return PushSource(
                kind: .base, folder: path, tensorFiles: tensorFiles, shardIndex: shardIndex, smallFiles: smallFiles,
                skipped: skipped)
        case .build:
            throw StoreError.invalidInput(path: path.path, reason: "builds are created with `lorastore build create`, not pushed")
        }
    }
}
