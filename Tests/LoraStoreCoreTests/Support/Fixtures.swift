import Foundation

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
}
