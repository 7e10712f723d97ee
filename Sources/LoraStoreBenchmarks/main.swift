// lorastore-bench: the benchmark suite behind BENCHMARKS.md (run it through scripts/benchmarks.sh).
//
// A plain executable rather than ordo-one/package-benchmark: every speed figure here is a ratio against a
// reference bandwidth measured on the same machine in the same run (memory read-and-rewrite, memcpy, file
// copy), and the results are written as Markdown into BENCHMARKS.md. A harness that reports absolute
// distributions per benchmark and compares against stored baselines answers another question.
//
// Groups: one file per group (References, Merge, Codec, Push, Pull, Index, Savings, Quantization); each adds sections to a BenchmarkReport,
// which prints every figure as it is measured and renders the Markdown at the end.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

// A write to the ZipNN or PEFT script after it died must fail with EPIPE, not end the run.
signal(SIGPIPE, SIG_IGN)

let options: BenchmarkOptions
do {
    options = try BenchmarkOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("lorastore-bench: \(error)\n\n\(BenchmarkOptions.usage)\n".utf8))
    exit(2)
}

do {
    let machine = MachineInfo.current()
    var report = BenchmarkReport(machine: machine, options: options)
    print(machine.summary)
    print("Run: \(options.summary)\n")
    let workspace = try Workspace(options: options)
    defer { workspace.removeAll() }

    let references = try ReferenceBenchmarks.run(options: options, workspace: workspace, report: &report)
    if options.groups.contains(.codec) {
        try CodecBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.push) {
        try PushBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.merge) {
        try MergeBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.pull) {
        try PullBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.index) {
        try IndexBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.savings) {
        try SavingsBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    if options.groups.contains(.quantization) {
        try QuantizationBenchmarks.run(options: options, references: references, workspace: workspace, report: &report)
    }
    report.addGeneration(workspace.generated, references: references)
    report.finish()
    if let output = options.output {
        try Data(report.markdown().utf8).write(to: output)
        print("\nWrote \(output.path)")
    }
} catch {
    FileHandle.standardError.write(Data("lorastore-bench: \(error)\n".utf8))
    exit(1)
}
