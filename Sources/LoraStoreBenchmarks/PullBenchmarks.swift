import Foundation
import Glibc
import LoraStoreCore

/// Pulling a build: the cold pull (merge, store the changed tensors, write the folder) against merging to a
/// folder plus copying the result, the warm pull (assembled from blobs) against a plain copy of the same
/// bytes, and the disk bytes a materialized build adds against a full merged copy.
enum PullBenchmarks {
    static let rank = 16

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        report.begin(
            "Pull",
            method: [
                "The generated base and one generated rank-\(rank) PEFT adapter on q, k, v, o, gate, up and down of every layer "
                    + "(as in *Merge*) are pushed into a fresh store, untimed, and a build of the two is recorded with "
                    + "`Store.createBuild` (nothing merged). Every written folder is fsynced (safetensors writer or the copy), "
                    + "every input is in the page cache, and dirty pages are written back (`sync`) between cases.",
                "- *merge to folder*: `Store.merge` of the same base and adapter into a folder (\(cores) threads, SHA-256 of "
                    + "each file, fsync). *copy of the merged files*: a plain `read`/`write` copy of that folder's "
                    + "files with fsync per file, like the reference copy. Their sum is what a user without builds "
                    + "pays to get a merged folder written twice (a merged copy kept, and the folder handed out).",
                "- *cold pull*: a `Store.pull(_:to:)` that materializes the build: merge (with the adapter-loss measurement "
                    + "every build records), store the changed tensors as build blobs (default codec policy, flushed together), "
                    + "write the folder (fsync), record the build's output. The ratio is its time over "
                    + "*merge to folder* + *copy of the merged files*: below 1 the pull is cheaper than the pair.",
                "- These three run in \(options.repetitions) alternated rounds (merge, copy, cold pull), each figure the "
                    + "best of its rounds: a single write-heavy run varies widely with the disk's state (the BF16 cold pull "
                    + "took between 1.35 and 2.28 s in single runs of the same code). Each round after "
                    + "the first evicts the build first (`setCacheBudget(0)`), so its pull merges again and checks every "
                    + "digest against the first one's record.",
                "- *warm pull*: later pulls of the same build into a new folder: every tensor read from the store's blobs, "
                    + "no merging. Best of \(options.repetitions) in one process, so the blobs stay mapped after the first. "
                    + "*plain copy of the pulled files*: the same bytes "
                    + "(the folder a warm pull wrote) copied with `read`/`write` and fsync per file, best of \(options.repetitions). "
                    + "The ratio is the warm pull's throughput over the copy's: 1 means pulling costs what copying does.",
            ],
            columns: ["base", "case", "bytes", "time", "rate", "ratio"])
        var storage: [[String]] = []
        for dtype in options.mergeDTypes.compactMap(DType.init(rawValue:)) {
            let (model, folder) = try workspace.base(dtype)
            let store = try Store(root: workspace.fresh("pull-store-\(dtype.rawValue.lowercased())"))
            defer { try? FileManager.default.removeItem(at: store.root) }
            let base = try Reference(parsing: "synthetic/base")
            try store.push(folder, to: base)
            let adapterFolder = workspace.fresh("pull-adapter-\(dtype.rawValue.lowercased())")
            try SyntheticAdapter(base: model, rank: rank, seed: UInt64(1000 + 10 * rank)).write(to: adapterFolder)
            let adapter = try Reference(parsing: "synthetic/adapter-r\(rank)")
            try store.push(adapterFolder, to: adapter, options: PushOptions(base: base))
            try? FileManager.default.removeItem(at: adapterFolder)
            let buildTag = try Reference(parsing: "synthetic/build:r\(rank)")
            let buildDigest = try store.createBuild(base: base, adapters: [(adapter, 1.0)], tag: buildTag)
            Workspace.flush()
            let label = "\(dtype.rawValue) \(Format.bytes(model.byteCount))"

            // The pair a cold pull is set against (merge to a folder, then copy its files) and the cold pull, in
            // alternated rounds: each round after the first evicts the build, so that its pull merges again.
            var mergeSeconds = Double.infinity
            var copyMergedSeconds = Double.infinity
            var coldSeconds = Double.infinity
            var (mergedBytes, copiedMerged, pulledBytes) = (0, 0, 0)
            let storeBefore = diskBytes(store.root)
            for round in 0..<max(options.repetitions, 1) {
                let merged = workspace.fresh("pull-merged")
                mergeSeconds = min(mergeSeconds, try Timing.seconds {
                    try store.merge(base: base, adapters: [(adapter, 1.0)], to: merged)
                })
                Workspace.flush()
                mergedBytes = try folderBytes(merged)
                let mergedCopy = workspace.fresh("pull-merged-copy")
                copyMergedSeconds = min(copyMergedSeconds, try Timing.seconds {
                    copiedMerged = try FileCopy.copyFolder(merged, to: mergedCopy, sync: true)
                })
                try? FileManager.default.removeItem(at: mergedCopy)
                try? FileManager.default.removeItem(at: merged)
                Workspace.flush()

                if round > 0 {
                    _ = try store.setCacheBudget(0)
                    _ = try store.setCacheBudget(nil)
                    Workspace.flush()
                }
                let cold = workspace.fresh("pull-cold")
                var coldResult: PullResult?
                coldSeconds = min(coldSeconds, try Timing.seconds { coldResult = try store.pull(buildTag.description, to: cold) })
                Workspace.flush()
                pulledBytes = try folderBytes(cold)
                try? FileManager.default.removeItem(at: cold)
                Workspace.flush()
                guard coldResult?.merged == true else { throw UnexpectedPull(what: "cold pull \(round + 1) did not merge") }
            }
            let storeAfter = diskBytes(store.root)
            let pairSeconds = mergeSeconds + copyMergedSeconds
            report.row([
                label, "merge to folder (`Store.merge`)", Format.bytes(mergedBytes), Format.seconds(mergeSeconds),
                Format.rate(Double(mergedBytes) / mergeSeconds), "–",
            ])
            report.row([
                label, "copy of the merged files (fsync)", Format.bytes(copiedMerged), Format.seconds(copyMergedSeconds),
                Format.rate(Double(copiedMerged) / copyMergedSeconds, of: references.fileCopySynced)
                    + " of the reference copy", "–",
            ])
            report.row([
                label, "merge + copy", Format.bytes(mergedBytes), Format.seconds(pairSeconds),
                Format.rate(Double(mergedBytes) / pairSeconds), "–",
            ])
            report.row([
                label, "cold pull (merges, stores the changed tensors)", Format.bytes(pulledBytes),
                Format.seconds(coldSeconds), Format.rate(Double(pulledBytes) / coldSeconds),
                Format.ratio(coldSeconds / pairSeconds) + "× the time of merge + copy",
            ])

            // Warm pulls: assembled from blobs; the last folder is kept as the copy's source.
            let warm = workspace.fresh("pull-warm")
            var warmSeconds = Double.infinity
            var spent = 0.0
            for attempt in 0..<max(options.repetitions, 1) {
                try? FileManager.default.removeItem(at: warm)
                var result: PullResult?
                let seconds = try Timing.seconds { result = try store.pull(buildTag.description, to: warm) }
                Workspace.flush()
                guard result?.merged == false else { throw UnexpectedPull(what: "a warm pull merged again") }
                warmSeconds = min(warmSeconds, seconds)
                spent += seconds
                if spent >= 20, attempt > 0 { break }
            }
            let warmBytes = try folderBytes(warm)
            let warmCopy = workspace.fresh("pull-warm-copy")
            var copiedWarm = 0
            var copyWarmSeconds = Double.infinity
            for _ in 0..<max(options.repetitions, 1) {
                try? FileManager.default.removeItem(at: warmCopy)
                copyWarmSeconds = min(copyWarmSeconds, try Timing.seconds {
                    copiedWarm = try FileCopy.copyFolder(warm, to: warmCopy, sync: true)
                })
                Workspace.flush()
            }
            try? FileManager.default.removeItem(at: warmCopy)
            try? FileManager.default.removeItem(at: warm)
            Workspace.flush()
            let warmRate = Double(warmBytes) / warmSeconds
            let copyRate = Double(copiedWarm) / copyWarmSeconds
            report.row([
                label, "plain copy of the pulled files (fsync)", Format.bytes(copiedWarm), Format.seconds(copyWarmSeconds),
                Format.rate(copyRate, of: references.fileCopySynced) + " of the reference copy", "–",
            ])
            report.row([
                label, "warm pull (no merge)", Format.bytes(warmBytes), Format.seconds(warmSeconds),
                Format.rate(warmRate), Format.ratio(warmRate / copyRate) + "× the copy's throughput",
            ])

            // What the materialized build occupies.
            let status = try store.cacheStatus()
            let entry = status.builds.first { $0.digest == buildDigest }
            let stats = try store.stats()
            let buildStored = stats.entries.first { $0.digest == buildDigest }?.storedBytes ?? 0
            storage.append([
                label, Format.bytes(mergedBytes), "\(status.usage) B (\(Format.bytes(status.usage)))",
                "\(buildStored) B", "\(entry?.storedBytes ?? 0) B",
                "\(storeAfter - storeBefore) B (\(Format.bytes(storeAfter - storeBefore)))",
                Format.ratio(Double(status.usage) / Double(mergedBytes)) + "×",
            ])
        }

        report.begin(
            "Pull: disk bytes of a materialized build",
            method: [
                "After the cold pulls above, with the same store: *cache usage* is `Store.cacheStatus().usage` (on-disk bytes "
                    + "of the blobs only builds hold), *stats build stored* the build's `storedBytes` in `Store.stats()`, "
                    + "*entry stored* the build's `BuildCacheEntry.storedBytes` (what evicting it frees). *store growth* is "
                    + "the store folder's allocated blocks (`st_blocks`, blobs and index) after the cold pulls minus before, "
                    + "with writeback done. *full merged model* is the size of the files `Store.merge` wrote. The ratio is "
                    + "cache usage over the full merged model: what keeping the build costs, against keeping a merged copy.",
            ],
            columns: ["base", "full merged model (files)", "cache usage", "stats build stored", "entry stored",
                      "store growth (st_blocks)", "cache usage / full merged model"])
        for row in storage { report.row(row) }
    }

    /// Bytes of the files directly in `folder` (and below).
    static func folderBytes(_ folder: URL) throws -> Int {
        var total = 0
        guard let enumerator = FileManager.default.enumerator(atPath: folder.path) else { return 0 }
        while let name = enumerator.nextObject() as? String {
            let attributes = try FileManager.default.attributesOfItem(atPath: folder.appending(path: name).path)
            if attributes[.type] as? FileAttributeType == .typeRegular {
                total += (attributes[.size] as? Int) ?? 0
            }
        }
        return total
    }

    /// Allocated bytes (`st_blocks` × 512) of every regular file under `folder`.
    static func diskBytes(_ folder: URL) -> Int {
        var total = 0
        guard let enumerator = FileManager.default.enumerator(atPath: folder.path) else { return 0 }
        while let name = enumerator.nextObject() as? String {
            var info = stat()
            if stat(folder.appending(path: name).path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total += Int(info.st_blocks) * 512
            }
        }
        return total
    }

    /// A pull did not do what the case needs.
    struct UnexpectedPull: Error, CustomStringConvertible {
        let what: String

        var description: String { what }
    }
}
