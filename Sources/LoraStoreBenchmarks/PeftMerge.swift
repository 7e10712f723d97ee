import Foundation

/// PEFT's `merge_and_unload` on CPU, measured by scripts/peft_merge_bench.py on the folders lorastore merged.
enum PeftMerge {
    /// The script, relative to the repository root (the working directory of scripts/benchmarks.sh).
    static let script = URL(fileURLWithPath: "scripts/peft_merge_bench.py")

    /// Seconds of PEFT repetitions (loads included) after which no new one starts: PEFT takes tens of
    /// seconds per merge of a 1 GiB base, far more than its spread between runs needs.
    static let budget = 30

    /// Whether PEFT is timed on `mergeCase`: every single-adapter case and the most adapters, which bounds
    /// the time the comparison adds (each PEFT case loads the model afresh per repetition).
    static func measures(_ mergeCase: MergeBenchmarks.Case, adapterCounts: [Int]) -> Bool {
        mergeCase.count == 1 || mergeCase.count == adapterCounts.max()
    }

    /// What the script measured on one case (its JSON, snake_case keys).
    struct Measurement: Decodable {
        /// Best wall-clock time of `merge_and_unload`, load excluded.
        let seconds: Double
        /// Best time of loading the base and the adapters (not part of `seconds`).
        let loadSeconds: Double
        /// Bytes of every tensor of the merged model's state dict.
        let baseBytes: Int
        let threads: Int
        /// torch, transformers and peft versions.
        let versions: [String: String]
        /// PEFT's merged tensors against lorastore's merged folder; nil when no folder was given.
        let comparison: Comparison?
    }

    /// Two merged tensors of PEFT against lorastore's (the script's tolerance is in its docstring).
    struct Comparison: Decodable {
        struct Tensor: Decodable {
            let tensor: String
            let maxAbsDifference: Double
            let withinTolerance: Bool
        }

        let tensors: [Tensor]
        /// Every compared tensor is within the tolerance.
        let matches: Bool
    }

    /// The script failed or measured something other than what lorastore merged.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the script on `base` with `adapters` (each weight 1) and returns its measurement.
    ///
    /// The script's output goes to a log in `scratch`; when it fails, the log's last line is the reason.
    /// - Parameters:
    ///   - compare: lorastore's merged folder of the same inputs, to check two merged tensors against.
    ///   - baseBytes: the tensor bytes lorastore merged; PEFT's model must hold the same.
    static func measure(
        python: URL, base: URL, adapters: [URL], compare: URL?, baseBytes: Int, repetitions: Int, threads: Int,
        scratch: URL
    ) throws -> Measurement {
        let output = scratch.appending(path: "peft.json")
        let log = scratch.appending(path: "peft.log")
        try? FileManager.default.removeItem(at: output)
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw Failure(description: "cannot create \(log.path)")
        }
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }
        let process = Process()
        process.executableURL = python
        var arguments = [script.path, "--base", base.path, "--output", output.path]
        for adapter in adapters { arguments += ["--adapter", adapter.path] }
        arguments += ["--repetitions", String(repetitions), "--budget", String(budget), "--threads", String(threads)]
        if let compare { arguments += ["--compare", compare.path] }
        process.arguments = arguments
        process.standardOutput = logHandle
        process.standardError = logHandle
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot run \(python.path): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit else {
            throw Failure(description: "the script was killed by signal \(process.terminationStatus)")
        }
        guard process.terminationStatus == 0 else {
            let lines = (try? String(contentsOf: log, encoding: .utf8))?.split(whereSeparator: \.isNewline) ?? []
            throw Failure(description: lines.last.map(String.init) ?? "the script exited with \(process.terminationStatus)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let measurement = try decoder.decode(Measurement.self, from: Data(contentsOf: output))
        guard measurement.baseBytes == baseBytes else {
            throw Failure(description: "PEFT's model holds \(measurement.baseBytes) tensor bytes, lorastore merged \(baseBytes)")
        }
        return measurement
    }
}
