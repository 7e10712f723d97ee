import Foundation
import LoraStoreCore

/// The shared PEFT ground-truth fixtures (read-only): `shared/fixtures/peft-micro` next to the repository,
/// found by walking up from this file.
enum Fixtures {
    static var root: URL {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("shared/fixtures/peft-micro", isDirectory: true)
            if FileManager.default.fileExists(atPath: candidate.path) {
                return candidate
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "/shared/fixtures/peft-micro", isDirectory: true)
    }

    /// The fixture at `path`, relative to ``root``.
    static func url(_ path: String) -> URL {
        root.appendingPathComponent(path)
    }

    /// Copies fixture folder `fixture` to `folder` with the lowest significand bit of `tensor`'s first
    /// element flipped in its `model.safetensors`: the same names, shapes and types, another model.
    static func copy(_ fixture: String, to folder: URL, flippingFirstBitOf tensor: String) throws {
        try FileManager.default.copyItem(at: url(fixture), to: folder)
        let file = folder.appending(path: "model.safetensors")
        let layout = try SafetensorsFile(contentsOf: file)
        guard let info = layout.tensors.first(where: { $0.name == tensor }) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "\(fixture) has no tensor \(tensor)"])
        }
        var bytes = try Data(contentsOf: file)
        bytes[layout.dataOffset + info.dataRange.lowerBound] ^= 1
        try bytes.write(to: file)
    }

    /// Adapters the fp32 micro base takes, by fixture folder.
    static let fp32Adapters = ["a_r8_qv", "b_r16_all_rslora", "d_r8_qv_lmhead_saved", "h_r4_embed_lmhead_lora"]
}

/// A fresh directory for one test, removed when the body returns.
enum TemporaryDirectory {
    static func with<Result>(_ body: (URL) async throws -> Result) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("lorastore-server-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }
}

/// Every file under `folder` at any depth, by path relative to it, without hidden ones (such as
/// huggingface_hub's `.cache`).
func folderContents(_ folder: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let paths = (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String]) ?? []
    for path in paths where !path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.appending(path: path).path, isDirectory: &isFolder), !isFolder.boolValue {
            files[path] = try Data(contentsOf: folder.appending(path: path))
        }
    }
    return files
}

