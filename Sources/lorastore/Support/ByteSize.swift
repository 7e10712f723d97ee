import Foundation
import ArgumentParser

/// A byte count written for people: `500MB`, `5GB`, `1.5GiB`, `4096` (decimal units are powers of 1000,
/// `KiB`/`MiB`/`GiB`/`TiB` powers of 1024).
struct ByteSize: ExpressibleByArgument, Sendable {
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Double)] = [
            ("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10),
            ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3), ("B", 1),
        ]
        let unit = units.first { text.hasSuffix($0.0) }
        let number = unit.map { String(text.dropLast($0.0.count)) } ?? text
        guard let value = Double(number.trimmingCharacters(in: .whitespaces)), value >= 0, value.isFinite else { return nil }
        let bytes = value * (unit?.1 ?? 1)
        // A fraction of a byte (`0.5B`, `1.0001KB`) is a typo, not a size to round away.
        guard bytes < Double(Int.max), bytes == bytes.rounded(.down) else { return nil }
        self.bytes = Int(bytes)
    }

    /// The default as `--help` shows it: `300MB` rather than the structure.
    var defaultValueDescription: String {
        for (unit, size) in [("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)B"
    }
}
