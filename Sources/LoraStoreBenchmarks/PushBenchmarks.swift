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
                    + "blob writes flushed together, one index transaction. The reference is a plain copy of the same files "
                    + "(`read`/`write`, fsync per file). A second push of the same folder to another tag must write no "
                    + "tensor bytes. The three run in \(options.repetitions) alternated rounds (copy, first push into a new "
                    + "store, second push into that store), each figure the best of its rounds. On the copy rows the ratio "
                    + "is against the reference file copy (one large file).",
            ],
            columns: ["case", "bytes", "time", "rate (× copying the same files with fsync)", "new blob bytes written"])
        for dtype in options.mergeDTypes.compactMap(DType.init(rawValue:)) {
            let (model, folder) = try workspace.base(dtype)
            var copied = 0
            var copySeconds = Double.infinity
            var pushes: [(label: String, seconds: Double, result: PushResult?)] = [
                ("first push", .infinity, nil), ("second push, same files", .infinity, nil),
            ]
            for _ in 0..<max(options.repetitions, 1) {
                let copyTarget = workspace.fresh("push-copy")
                copySeconds = min(copySeconds, try Timing.seconds {
                    copied = try FileCopy.copyFolder(folder, to: copyTarget, sync: true)
                })
                try? FileManager.default.removeItem(at: copyTarget)
                Workspace.flush()

                let store = try Store(root: workspace.fresh("push-store-\(dtype.rawValue.lowercased())"))
                for (index, tag) in ["first", "second"].enumerated() {
                    var result: PushResult?
                    let seconds = try Timing.seconds {
                        result = try store.push(folder, to: try Reference(parsing: "synthetic/base:\(tag)"))
                    }
                    Workspace.flush()
                    if seconds < pushes[index].seconds { (pushes[index].seconds, pushes[index].result) = (seconds, result) }
                }
                try? FileManager.default.removeItem(at: store.root)
                Workspace.flush()
            }
            let copyRate = Double(copied) / copySeconds
            report.row([
                "copy \(dtype.rawValue) base files (fsync)", Format.bytes(copied), Format.seconds(copySeconds),
                Format.rate(copyRate, of: references.fileCopySynced), "–",
            ])
            for push in pushes {
                let bytes = push.result?.logicalBytes ?? model.byteCount
                report.row([
                    "\(push.label), \(dtype.rawValue)", Format.bytes(bytes), Format.seconds(push.seconds),
                    Format.rate(Double(bytes) / push.seconds, of: copyRate),
                    "\(push.result?.newStoredBytes ?? 0) B in \(push.result?.newBlobs ?? 0) blobs",
                ])
            }
        }
    }
}
