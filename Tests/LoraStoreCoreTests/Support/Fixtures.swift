import Foundation
@testable import LoraStoreCore

/// The shared PEFT ground-truth fixtures (read-only): `shared/fixtures/peft-micro` next to the repository.
///
/// Found by walking up from this file until a folder contains `shared/fixtures/peft-micro`, so the
/// lookup works wherever the package is checked out beside `shared`.
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
}
