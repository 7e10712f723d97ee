import Foundation
import Testing
@testable import LoraStoreCore

/// Python with `safetensors` (and optionally `transformers`), from `$LORASTORE_PYTHON` (`.ci/run` makes one).
enum PythonInterop {
    static var python: String? {
        guard let path = ProcessInfo.processInfo.environment["LORASTORE_PYTHON"],
            FileManager.default.isExecutableFile(atPath: path)
        else { return nil }
        return path
    }

    /// Runs `script` with `arguments`; returns the exit status and output.
    static func run(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python ?? "/usr/bin/false")
        process.arguments = ["-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

@Suite("Loading lorastore output in Python")
struct PythonInteropTests {
    /// Loads every tensor of a merged folder with `safetensors.safe_open` and prints name, dtype, shape and a
    /// checksum; then, if `transformers` (with torch) is installed, loads the folder as a model.
    static let script = #"""
    import json, sys, glob, os
    from safetensors import safe_open
    import numpy as np
    folder = sys.argv[1]
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata()
            assert meta.get("format") == "pt", meta
            for name in f.keys():
                t = f.get_tensor(name)
                out[name] = [str(t.dtype), list(t.shape), float(np.asarray(t, dtype=np.float64).sum())]
    try:
        import transformers, torch
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)
        out["__transformers__"] = type(model).__name__
    except ImportError as error:
        out["__transformers__"] = "skipped: " + str(error)
    print(json.dumps(out))
    """#

    @Test(.enabled(if: PythonInterop.python != nil, "set LORASTORE_PYTHON to a Python with safetensors and numpy (.ci/run does)"))
    func mergedOutputLoadsWithSafeOpen() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32Base()
            try test.push("adapters/b_r16_all_rslora", as: "acme/b", base: "micro/base:fp32")
            let merged = try test.merge(
                base: "micro/base:fp32", adapters: [("acme/b", 0.5)], options: MergeOptions(maxShardSize: 200_000))
            let result = try PythonInterop.run(Self.script, [directory.appending(path: "merged").path])
            #expect(result.status == 0, "\(result.output)")
            let loaded = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
            for (name, tensor) in merged {
                let entry = loaded[name] as? [Any]
                #expect(entry?[1] as? [Int] == tensor.shape, "\(name)")
                let sum = tensor.floats.reduce(0.0) { $0 + Double($1) }
                #expect(abs((entry?[2] as? Double ?? .nan) - sum) <= 1e-3 * max(1, abs(sum)), "\(name)")
            }
            let transformers = loaded["__transformers__"] as? String ?? ""
            #expect(transformers == "LlamaForCausalLM" || transformers.hasPrefix("skipped"), "\(transformers)")
        }
    }
}
