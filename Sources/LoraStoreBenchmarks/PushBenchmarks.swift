import Foundation
import LoraStoreCore

/// Pushing a generated base into a fresh store, against copying the same files.
enum PushBenchmarks {
    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        report.begin(
            "Push",
            method: [
                "The generated base folder (in the page cache) is pushed into a fresh store with `Store.push` and the "
                    + "default codec policy (base tensors stored raw): validation, NaN/Inf scan, SHA-256 of every tensor, "
                    + "blob writes with fsync, one index transaction. The reference is a plain copy of the same files "
                    + "(`read`/`write`, fsync per file) measured just before, best of \(options.repetitions). A second push "
                    + "of the same folder to another tag must write no tensor bytes. One run each (a first push needs an "
                    + "empty store). On the copy rows the ratio is against the reference file copy (one large file).",
            ],
            columns: ["case", "bytes", "time", "rate (× copying the same files with fsync)", "new blob bytes written"])
        for dtype in options.mergeDTypes.compactMap(DType.init(rawValue:)) {
            let (model, folder) = try workspace.base(dtype)
            var copied = 0
            var copySeconds = Double.infinity
            for _ in 0..<options.repetitions {
                let copyTarget = workspace.fresh("push-copy")
                let seconds = try Timing.seconds { copied = try FileCopy.copyFolder(folder, to: copyTarget, sync: true) }
                copySeconds = min(copySeconds, seconds)
                try? FileManager.default.removeItem(at: copyTarget)
                Workspace.flush()
            }
            let copyRate = Double(copied) / copySeconds
            report.row([
                "copy \(dtype.rawValue) base files (fsync)", Format.bytes(copied), Format.seconds(copySeconds),
                Format.rate(copyRate, of: references.fileCopySynced), "–",
            ])

            let store = try Store(root: workspace.fresh("push-store-\(dtype.rawValue.lowercased())"))
            for (label, tag) in [("first push", "first"), ("second push, same files", "second")] {
                var result: PushResult?
                let seconds = try Timing.seconds {
                    result = try store.push(folder, to: try Reference(parsing: "synthetic/base:\(tag)"))
                }
                Workspace.flush()
                let bytes = result?.logicalBytes ?? model.byteCount
                report.row([
                    "\(label), \(dtype.rawValue)", Format.bytes(bytes), Format.seconds(seconds),
                    Format.rate(Double(bytes) / seconds, of: copyRate),
                    "\(result?.newStoredBytes ?? 0) B in \(result?.newBlobs ?? 0) blobs",
                ])
            }
            try? FileManager.default.removeItem(at: store.root)
        }
    }
}
