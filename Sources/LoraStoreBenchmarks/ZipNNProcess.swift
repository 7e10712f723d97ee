import Foundation
import LoraStoreCore

/// ZipNN from PyPI, through scripts/zipnn_bench.py running beside the benchmark for the whole codec group.
///
/// The codec group alternates each of its rounds with one of ZipNN's on the same sample file, so both
/// codecs are timed over the same minutes: run minutes apart, ZipNN's single-thread decode measured
/// anywhere from 905 to 1385 MB/s on this machine's F32 sample, more than the gap being compared. The
/// process stays up between rounds (it reads one request per line), so importing zipnn and torch is paid
/// once; it waits on its input while lorastore's codec runs.
final class ZipNNProcess {
    /// One round: one compression and one decompression of a sample, single-threaded.
    struct Round: Decodable {
        let bytes: Int
        let compressed: Int
        let compressSeconds: Double
        let decompressSeconds: Double
    }

    /// The script could not run, or answered something other than a round.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The script's first line: the version and settings, or why zipnn cannot be imported.
    private struct Greeting: Decodable {
        let status: String
        let reason: String?
        let version: String?
        let settings: String?
    }

    private struct Reply: Decodable {
        let error: String?
    }

    /// The script, relative to the repository root (the working directory of scripts/benchmarks.sh).
    static let script = URL(fileURLWithPath: "scripts/zipnn_bench.py")

    /// The zipnn package version.
    let version: String
    /// How ZipNN is configured, for the method text.
    let settings: String
    private let process: Process
    private let requests: FileHandle
    private let replies: FileHandle
    private var pending = Data()

    /// Starts the script with `python`; its standard error (torch's warnings, a traceback) goes to `log`.
    ///
    /// - Throws: ``Failure`` when the script cannot start or cannot import zipnn, with the reason.
    init(python: URL, log: URL) throws {
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw Failure(description: "cannot create \(log.path)")
        }
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }
        let input = Pipe()
        let output = Pipe()
        process = Process()
        process.executableURL = python
        process.arguments = [Self.script.path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = logHandle
        requests = input.fileHandleForWriting
        replies = output.fileHandleForReading
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot run \(python.path) \(Self.script.path): \(error.localizedDescription)")
        }
        var first: Greeting?
        do {
            first = try Self.decode(Greeting.self, from: try Self.line(from: replies, pending: &pending))
        } catch {
            first = nil
        }
        guard let greeting = first, greeting.status == "ok", let version = greeting.version else {
            let reason = first?.reason ?? Self.lastLine(of: log) ?? "the script gave no greeting"
            try? requests.close()
            process.waitUntilExit()
            throw Failure(description: reason)
        }
        self.version = version
        settings = greeting.settings ?? "defaults"
    }

    /// One round of ZipNN on the raw little-endian values of `dtype` in `file`.
    ///
    /// - Throws: ``Failure`` for anything that went wrong: the script's own error, a reply that is not a
    ///   round, or a script that is gone (writing to it fails with `EPIPE` once `SIGPIPE` is ignored).
    func round(file: URL, dtype: DType) throws(Failure) -> Round {
        do {
            try requests.write(contentsOf: Data("\(dtype.rawValue) \(file.path)\n".utf8))
            let line = try Self.line(from: replies, pending: &pending)
            if let error = try? Self.decode(Reply.self, from: line).error {
                throw Failure(description: error)
            }
            return try Self.decode(Round.self, from: line)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "no round from scripts/zipnn_bench.py: \(error)")
        }
    }

    /// Ends the script (it exits when its input closes).
    func close() {
        try? requests.close()
        process.waitUntilExit()
    }

    /// The next line the script wrote, without its newline.
    private static func line(from handle: FileHandle, pending: inout Data) throws -> Data {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                return Data(line)
            }
            let chunk = handle.availableData
            guard !chunk.isEmpty else { throw Failure(description: "the script ended before answering") }
            pending.append(chunk)
        }
    }

    private static func decode<Value: Decodable>(_ type: Value.Type, from line: Data) throws -> Value {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: line)
    }

    private static func lastLine(of log: URL) -> String? {
        (try? String(contentsOf: log, encoding: .utf8))?.split(whereSeparator: \.isNewline).last.map(String.init)
    }
}
