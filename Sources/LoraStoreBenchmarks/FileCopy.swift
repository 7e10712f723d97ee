import Foundation
import Glibc
import LoraStoreCore

/// A plain file copy, as `cp` does it: `read` into one buffer and `write`, single-threaded.
enum FileCopy {
    static let bufferSize = 8 << 20

    /// Copies the file at `source` to `destination` (created), with `fsync` at the end when `sync`.
    static func copy(_ source: URL, to destination: URL, sync: Bool) throws {
        let descriptor = open(source.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadFailure(path: source.path, code: errno) }
        defer { close(descriptor) }
        let output = try WritableFile(creating: destination.path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, bufferSize)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw ReadFailure(path: source.path, code: errno) }
            if count == 0 { break }
            try output.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        if sync { try output.sync() }
        try output.close()
    }

    /// Opening or reading the source failed.
    struct ReadFailure: Error, CustomStringConvertible {
        let path: String
        let code: Int32

        var description: String { "cannot read \(path): \(String(cString: strerror(code)))" }
    }

    /// Copies every file of the folder `source` into a new folder `destination`; returns the bytes copied.
    @discardableResult
    static func copyFolder(_ source: URL, to destination: URL, sync: Bool) throws -> Int {
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path).sorted() {
            let from = source.appending(path: name)
            try copy(from, to: destination.appending(path: name), sync: sync)
            total += (try FileManager.default.attributesOfItem(atPath: from.path)[.size] as? Int) ?? 0
        }
        return total
    }
}
