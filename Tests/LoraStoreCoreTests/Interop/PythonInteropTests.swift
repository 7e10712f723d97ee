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

    /// Runs `script` with `arguments`; returns the exit status, standard output and standard error (kept
    /// apart: libraries such as transformers print warnings on standard error while the script's result is
    /// JSON on standard output).
    static func run(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try TemporaryDirectory.with { directory in
            let errorsFile = directory.appending(path: "stderr.txt")
            _ = FileManager.default.createFile(atPath: errorsFile.path, contents: nil)
            let errors = try FileHandle(forWritingTo: errorsFile)
            defer { try? errors.close() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python ?? "/usr/bin/false")
            process.arguments = ["-c", script] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = errors
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let errorText = (try? String(contentsOf: errorsFile, encoding: .utf8)) ?? ""
            return (process.terminationStatus, String(decoding: data, as: UTF8.self), errorText)
        }
    }
}

@Suite("Loading lorastore output in Python")
struct PythonInteropTests {
    /// Loads every tensor of a merged folder with `safetensors.safe_open` and prints name, dtype, shape and a
    /// checksum; then, if `transformers` (with torch) is installed, loads the folder as a model, checks that
    /// the model holds the merged weights (not freshly initialised ones) and runs a forward pass.
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
    except ImportError as error:
        out["__transformers__"] = "skipped: " + str(error)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)
        state = model.state_dict()
        differing = []
        for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
            with safe_open(path, framework="pt") as f:
                for name in f.keys():
                    if not torch.equal(state[name], f.get_tensor(name)):
                        differing.append(name)
        with torch.no_grad():
            logits = model(torch.tensor([[1, 2, 3, 4]])).logits
        out["__transformers__"] = {
            "class": type(model).__name__, "differing": differing,
            "logits": list(logits.shape), "finite": bool(torch.isfinite(logits).all()),
        }
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
            try #require(result.status == 0, "\(result.output)\n\(result.errors)")
            let loaded = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
            for (name, tensor) in merged {
                let entry = loaded[name] as? [Any]
                #expect(entry?[1] as? [Int] == tensor.shape, "\(name)")
                let sum = tensor.floats.reduce(0.0) { $0 + Double($1) }
                #expect(abs((entry?[2] as? Double ?? .nan) - sum) <= 1e-3 * max(1, abs(sum)), "\(name)")
            }
            if let skipped = loaded["__transformers__"] as? String {
                #expect(skipped.hasPrefix("skipped"))
                print("transformers check \(skipped) (install torch and transformers next to LORASTORE_PYTHON's safetensors)")
                return
            }
            let transformers = try #require(loaded["__transformers__"] as? [String: Any], "\(result.output)")
            #expect(transformers["class"] as? String == "LlamaForCausalLM")
            #expect(transformers["differing"] as? [String] == [], "tensors transformers holds differently from the files")
            #expect(transformers["logits"] as? [Int] == [1, 4, 256], "vocabulary of the micro base")
            #expect(transformers["finite"] as? Bool == true)
        }
    }
}
