import Foundation
import LoraStoreCore
import Testing

@Suite("Mapped files")
struct MappedFileTests {
    @Test func mapsTheWholeFile() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("data.bin")
            let contents = (0 ..< 10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try Data(contents).write(to: url)
            let file = try MappedFile(url: url)
            #expect(Array(file.bytes) == contents)
        }
    }

    @Test func mapsAnEmptyFileAsAnEmptyBuffer() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("empty.bin")
            try Data().write(to: url)
            let file = try MappedFile(url: url)
            #expect(file.bytes.isEmpty)
            #expect(file.bytes.baseAddress == nil)
        }
    }

    @Test func reportsAMissingFile() throws {
        try TemporaryDirectory.with { directory in
            let url = directory.appendingPathComponent("missing.bin")
            let error = #expect(throws: FileAccessError.self) { try MappedFile(url: url) }
            #expect(error == FileAccessError(operation: .open, path: url.path, code: ENOENT, reason: "No such file or directory"))
            #expect(error?.description == "cannot open \(url.path): No such file or directory")
        }
    }

    @Test func refusesADirectory() throws {
        try TemporaryDirectory.with { directory in
            let error = #expect(throws: FileAccessError.self) { try MappedFile(url: directory) }
            #expect(error?.operation == .map)
            #expect(error?.description == "cannot map \(directory.path): not a regular file")
        }
    }
}
