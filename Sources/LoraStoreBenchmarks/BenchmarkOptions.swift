import Foundation

/// The command line of `lorastore-bench`.
struct BenchmarkOptions {
    /// A group of cases; the references are always measured since every figure is a ratio against them.
    enum Group: String, CaseIterable {
        case merge, codec, push, pull, index, savings, quantization
    }

    /// A malformed command line.
    struct UsageError: Error, CustomStringConvertible {
        let description: String
    }

    /// Tensor bytes of each generated base (merge, push, pull) and size of the reference file copy (at least
    /// 1 GiB unless quick).
    var size = 1 << 30
    /// Bytes of each generated tensor the codecs compress.
    var codecSize = 64 << 20
    var groups: [Group] = Group.allCases
    var quick = false
    var output: URL?
    var workDirectory: URL?
    /// Whether the codec group measures ZipNN beside lorastore's codec (scripts/zipnn_bench.py).
    var zipNN: PythonPeer = .off
    /// Safetensors files or folders whose weights the codec group also compresses; nil: the Hugging Face
    /// hub cache (``RealWeights/defaultLocations(environment:)``).
    var realWeights: [URL]?
    /// Also merge F32 bases (BF16 always).
    var mergeDTypes: [String] = ["BF16", "F32"]
    /// Also time PEFT's `merge_and_unload` on the merge cases.
    var peft: PythonPeer = .off

    /// Repetitions of a timed case; the best is kept.
    var repetitions: Int { quick ? 1 : 3 }
    /// LoRA ranks merged with one adapter.
    var ranks: [Int] { quick ? [16] : [8, 16, 64] }
    /// Numbers of rank-16 adapters merged at once.
    var adapterCounts: [Int] { quick ? [1, 2] : [1, 2, 3, 4] }
    /// Size of the reference file copy.
    var referenceSize: Int { quick ? min(size, 256 << 20) : max(size, 1 << 30) }
    /// Size of the in-memory reference buffers: 4 GiB unless quick, many times any server's last-level cache
    /// (a 1 GiB buffer on a machine with a 300 MiB L3 is partly served from it between passes).
    var memoryReferenceSize: Int { quick ? min(size, 256 << 20) : max(size, 4 << 30) }

    static let usage = """
        usage: lorastore-bench [--size SIZE] [--codec-size SIZE] [--groups merge,codec,push,pull,index,savings,quantization] [--quick]
                               [--output PATH] [--work-dir PATH] [--merge-dtypes BF16,F32] [--real-weights PATH]...
                               [--zipnn-python PATH | --zipnn-skipped REASON]
                               [--peft-python PATH | --peft-skipped REASON]
          --size          tensor bytes of each generated base and of the reference buffers (default 1GiB)
          --codec-size    bytes of each tensor the codecs compress (default 64MiB)
          --groups        groups to run besides the references (default all)
          --quick         smoke run: 128MiB base, 8MiB codec tensors, one repetition, fewer cases
          --output        write the Markdown results section here
          --work-dir      where generated models and stores go (default: a temporary folder, removed)
          --merge-dtypes  types of the merged bases (default BF16,F32)
          --real-weights  a safetensors file or a folder of them whose weight matrices the codecs also
                          compress (repeatable; default: the Hugging Face hub cache, if any)
          --zipnn-python  also measure ZipNN beside the codecs with this Python (zipnn installed), running
                          scripts/zipnn_bench.py from the current directory (the repository root)
          --zipnn-skipped ZipNN was requested but could not be set up: show this reason in the codec results
          --peft-python   also time PEFT's merge_and_unload on the merge cases with this Python (torch,
                          transformers and peft installed), running scripts/peft_merge_bench.py from the
                          current directory (the repository root)
          --peft-skipped  PEFT was requested but could not be set up: show this reason in the merge results
        SIZE is a number with an optional unit: B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (of 1024).
        """

    static func parse(_ arguments: [String]) throws(UsageError) -> BenchmarkOptions {
        var options = BenchmarkOptions()
        var sizeGiven = false
        var codecSizeGiven = false
        var remaining = arguments[...]
        func value(_ flag: String) throws(UsageError) -> String {
            guard let next = remaining.popFirst() else { throw UsageError(description: "\(flag) needs a value") }
            return next
        }
        while let flag = remaining.popFirst() {
            switch flag {
            case "--size":
                options.size = try parseSize(try value(flag))
                sizeGiven = true
            case "--codec-size":
                options.codecSize = try parseSize(try value(flag))
                codecSizeGiven = true
            case "--groups":
                let names = try value(flag).split(separator: ",").map(String.init)
                options.groups = try names.map { name throws(UsageError) in
                    guard let group = Group(rawValue: name) else {
                        throw UsageError(description: "unknown group \(name); groups are \(Group.allCases.map(\.rawValue))")
                    }
                    return group
                }
            case "--merge-dtypes":
                options.mergeDTypes = try value(flag).split(separator: ",").map { $0.uppercased() }
                guard options.mergeDTypes.allSatisfy({ ["BF16", "F16", "F32"].contains($0) }) else {
                    throw UsageError(description: "--merge-dtypes takes BF16, F16 and F32")
                }
            case "--quick": options.quick = true
            case "--output": options.output = URL(fileURLWithPath: try value(flag))
            case "--work-dir": options.workDirectory = URL(fileURLWithPath: try value(flag))
            case "--real-weights": options.realWeights = (options.realWeights ?? []) + [URL(fileURLWithPath: try value(flag))]
            case "--zipnn-python":
                options.zipNN = .run(python: URL(fileURLWithPath: try value(flag)))
                try requireScript(ZipNNProcess.script, for: flag)
            case "--zipnn-skipped": options.zipNN = .skipped(reason: try value(flag))
            case "--peft-python":
                options.peft = .run(python: URL(fileURLWithPath: try value(flag)))
                try requireScript(PeftMerge.script, for: flag)
            case "--peft-skipped": options.peft = .skipped(reason: try value(flag))
            case "--help", "-h": throw UsageError(description: "help")
            default: throw UsageError(description: "unknown argument \(flag)")
            }
        }
        if options.quick {
            if !sizeGiven { options.size = 128 << 20 }
            if !codecSizeGiven { options.codecSize = 8 << 20 }
        }
        guard options.size >= 1 << 20, options.codecSize >= 1 << 20 else {
            throw UsageError(description: "sizes must be at least 1MiB")
        }
        return options
    }

    /// Refuses `flag` when its script is not where it is run from.
    private static func requireScript(_ script: URL, for flag: String) throws(UsageError) {
        guard FileManager.default.fileExists(atPath: script.path) else {
            throw UsageError(
                description: "\(flag) runs \(script.relativePath), which is not in the current directory; run from the "
                    + "repository root")
        }
    }

    static func parseSize(_ text: String) throws(UsageError) -> Int {
        let units: [(String, Double)] = [
            ("KIB", 1024), ("MIB", 1_048_576), ("GIB", 1_073_741_824), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1),
        ]
        let upper = text.uppercased()
        for (unit, factor) in units where upper.hasSuffix(unit) {
            guard let number = Double(upper.dropLast(unit.count)), number > 0 else { break }
            return Int(number * factor)
        }
        guard let bytes = Int(upper), bytes > 0 else { throw UsageError(description: "not a size: \(text)") }
        return bytes
    }

    /// One line describing the run's parameters.
    var summary: String {
        "base size \(Format.bytes(size)), codec tensors \(Format.bytes(codecSize)), groups "
            + groups.map(\.rawValue).joined(separator: ",") + (quick ? ", quick" : "")
            + ", best of \(repetitions)"
    }
}
