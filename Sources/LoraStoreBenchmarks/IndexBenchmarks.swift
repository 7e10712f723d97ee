import Dispatch
import Foundation
import LoraStoreCore

/// The index at scale: a store filled with many small adapters (real batch pushes of real adapter folders)
/// and build recipes, then the latency of `ls`, `show` and `lineage` and of pushing more adapters, against the
/// same operations on the same store when it held a handful of entries; and the index's size on disk.
enum IndexBenchmarks {
    /// The scale the issue asks for; the run stops earlier when its time budget is spent and says so.
    static let adapterGoal = 100_000
    static let buildGoal = 10_000
    /// Adapters per batch push while filling: each batch is validated in parallel, flushed together and
    /// committed in one transaction.
    static let batchSize = 1_000
    /// Adapters per timed batch push in the latency table.
    static let timedBatchSize = 100
    /// Threads writing adapter folders (the machine's cores).
    static let writers = ProcessInfo.processInfo.activeProcessorCount
    /// Batch pushes running at once while filling.
    static let fillers = 2
    /// Threads recording build recipes at once.
    static let buildWorkers = 8

    static func run(
        options: BenchmarkOptions, references: ReferenceBandwidths, workspace: Workspace, report: inout BenchmarkReport
    ) throws {
        let adapterGoal = options.quick ? 5_000 : Self.adapterGoal
        let buildGoal = options.quick ? 500 : Self.buildGoal
        let adapterBudget = options.quick ? 15.0 : 160.0
        let buildBudget = options.quick ? 5.0 : 30.0

        // A tiny base (the PEFT micro shape, one layer) and rank-1 adapters on q_proj: every push is real
        // (validation, hashing, blob writes made durable, index rows) but moves a few KiB.
        let model = SyntheticModel(dimensions: .micro, layers: 1, dtype: .bf16, seed: 7)
        let baseFolder = workspace.fresh("index-base")
        try model.write(to: baseFolder)
        let store = try Store(root: workspace.fresh("index-store"))
        defer {
            try? FileManager.default.removeItem(at: store.root)
            try? FileManager.default.removeItem(at: baseFolder)
        }
        let base = try Reference(parsing: "synthetic/tiny-base")
        try store.push(baseFolder, to: base)
        // The adapter folders go to memory (tmpfs) when the machine has it, so that writing and removing the
        // inputs does not compete with the store for its filesystem's journal.
        let scratch = FileManager.default.fileExists(atPath: "/dev/shm")
            ? URL(fileURLWithPath: "/dev/shm/lorastore-bench-index-\(getpid())") : workspace.fresh("index-adapters")
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let pusher = AdapterPusher(store: store, model: model, base: base, scratch: scratch)
        // The small store: 10 adapters and 10 builds.
        let seed = 10
        _ = try pusher.pushBatch(0..<seed)
        for index in 0..<seed {
            try store.createBuild(
                base: base, adapters: [(try adapterReference(index), 1.0)], tag: try buildReference(index))
        }
        let small = try measure(store: store, base: base, adapters: seed, builds: seed, pusher: pusher, nextAdapter: seed,
                                quick: options.quick)

        // Fill it, one batch push at a time.
        // Fill it, one batch push at a time on each of `fillers` threads, so that one batch's validation
        // overlaps another's writes and commit.
        let first = seed + small.pushed
        let filling = Filling()
        let fill = try parallel(
            count: (adapterGoal - first + batchSize - 1) / batchSize, budget: adapterBudget, workers: fillers
        ) { batch, worker in
            let start = first + batch * batchSize
            filling.add(try pusher.pushBatch(start..<min(start + batchSize, adapterGoal), slot: "fill-\(worker)"))
        }
        let adapterCount = min(first + fill.done * batchSize, adapterGoal)
        let totals = filling.totals
        let buildsMore = try parallel(count: buildGoal - seed, budget: buildBudget, workers: buildWorkers) { offset, _ in
            let index = seed + offset
            // One adapter per build while there are enough; past that, the same adapters at other weights.
            let adapter = index % adapterCount
            let weight = 1.0 + Double(index / adapterCount) * 0.125
            try store.createBuild(
                base: base, adapters: [(try adapterReference(adapter), weight)], tag: try buildReference(index))
        }
        let buildCount = seed + buildsMore.done
        Workspace.flush()
        let indexFiles = indexSizes(store)
        let large = try measure(
            store: store, base: base, adapters: adapterCount, builds: buildCount, pusher: pusher,
            nextAdapter: adapterCount, quick: options.quick)
        let finalCount = adapterCount + large.pushed

        report.begin(
            "Index at scale",
            method: [
                "One store, one tiny base (the PEFT micro shape: hidden 64, one layer) and rank-1 PEFT adapters on `q_proj` "
                    + "(distinct seeds, so two new tensor blobs each, plus one shared `adapter_config.json` blob). Every adapter "
                    + "is a real folder (`adapter_config.json`, `adapter_model.safetensors`) written by `SyntheticAdapter` "
                    + "(\(writers) threads, no fsync; into `/dev/shm` when the machine has it, so that the inputs do not share "
                    + "the store's filesystem) and goes in through a real batch push, `Store.push(_:options:)` of "
                    + "\(batchSize) folders, \(fillers) such batches running at once: each item validated like a single push (layout, config, shapes against "
                    + "the base, NaN/infinity, SHA-256) on all cores, new blobs written to temporary files, flushed together, "
                    + "linked into place, flushed again (a batch of 16 blobs or more flushes with `syncfs`, fewer with an "
                    + "fsync per file and folder), then one index transaction for the whole batch. Builds "
                    + "are recipes recorded with `Store.createBuild` (one adapter each, nothing merged), \(buildWorkers) at a time. "
                    + "Goal: \(adapterGoal) adapters and \(buildGoal) builds; the filling stops when its time budget "
                    + "(\(Int(adapterBudget)) s for adapters, \(Int(buildBudget)) s for builds) is spent, and the scale reached is what the notes say.",
                "Latencies are wall-clock per call, on the same store first at \(seed) adapters and \(seed) builds "
                    + "(*small*), then full (*at scale*). *ls*: `Store.list()` (every tag). *show*: `Store.describe` of a random "
                    + "adapter or build tag. *lineage*: `Store.lineage` of a random adapter (its builds), a random build (base "
                    + "and adapter) or the base (every adapter and build made from it). *push one more adapter*: `Store.push` "
                    + "of one new adapter folder (written beforehand, untimed). *batch push*: `Store.push(_:options:)` of "
                    + "\(timedBatchSize) new adapter folders (written beforehand, untimed). Each case runs until its call count or "
                    + "its time budget is reached; p50 and p99 are nearest-rank percentiles of those calls (with fewer than "
                    + "100 calls, p99 is the slowest).",
            ],
            columns: ["operation", "small: calls", "small: p50", "small: p99", "at scale: calls", "at scale: p50",
                      "at scale: p99", "p50 at scale ÷ small"])
        for (name, at) in large.latencies {
            guard let before = small.latencies.first(where: { $0.name == name })?.samples else { continue }
            let p50Small = percentile(before, 0.5)
            let p50Large = percentile(at, 0.5)
            report.row([
                name, "\(before.count)", milliseconds(p50Small), milliseconds(percentile(before, 0.99)),
                "\(at.count)", milliseconds(p50Large), milliseconds(percentile(at, 0.99)),
                Format.ratio(p50Large / p50Small) + "×",
            ])
        }
        var short: [String] = []
        if adapterCount < adapterGoal { short.append("\(adapterGoal) adapters") }
        if buildCount < buildGoal { short.append("\(buildGoal) builds") }
        report.note(
            "Scale reached: \(adapterCount) adapters (\(finalCount) after the timed pushes) and \(buildCount) builds"
                + (short.isEmpty
                    ? ", the goal."
                    : "; short of the goal of " + short.joined(separator: " and ") + ": the time budget ran out first."))
        report.note(
            "Filling: \(totals.adapters) adapters in \(totals.batches) batch pushes of \(batchSize), \(fillers) at a time, "
                + "in \(Format.seconds(fill.seconds)) "
                + String(format: "(%.0f adapters/s)", Double(totals.adapters) / fill.seconds)
                + "; summed over the batches: writing the folders \(Format.seconds(totals.writing)), batch pushes "
                + "\(Format.seconds(totals.pushing)) "
                + String(format: "(%.2f ms per adapter)", totals.pushing * 1000 / Double(max(totals.adapters, 1)))
                + ", removing the folders \(Format.seconds(totals.removing)); "
                + "\(buildsMore.done) build recipes in \(Format.seconds(buildsMore.seconds)) "
                + String(format: "(%.0f builds/s).", Double(buildsMore.done) / buildsMore.seconds))
        let indexTotal = indexFiles.main + indexFiles.wal + indexFiles.shm
        report.note(
            "Index on disk at \(adapterCount) adapters and \(buildCount) builds: index.sqlite \(Format.bytes(indexFiles.main)), "
                + "-wal \(Format.bytes(indexFiles.wal)), -shm \(Format.bytes(indexFiles.shm)); total \(Format.bytes(indexTotal)) = "
                + String(format: "%.2f KiB per manifest", Double(indexTotal) / 1024 / Double(adapterCount + buildCount + 1))
                + " (each adapter's manifest JSON, tag, adapter row, blob rows; each build's recipe, tag and rows).")
    }

    /// Where the filling's time went, summed over the batches (which overlap in time).
    final class Filling: @unchecked Sendable {
        struct Totals {
            var adapters = 0
            var batches = 0
            var writing = 0.0
            var pushing = 0.0
            var removing = 0.0
        }

        private let lock = NSLock()
        private var sums = Totals()

        func add(_ batch: AdapterPusher.Batch) {
            lock.lock()
            defer { lock.unlock() }
            sums.adapters += batch.count
            sums.batches += 1
            sums.writing += batch.writing
            sums.pushing += batch.pushing
            sums.removing += batch.removing
        }

        var totals: Totals {
            lock.lock()
            defer { lock.unlock() }
            return sums
        }
    }

    // MARK: Measuring

    struct Measured {
        var latencies: [(name: String, samples: [Double])]
        /// Adapters pushed by the push case (they stay in the store).
        var pushed: Int
    }

    static func measure(
        store: Store, base: Reference, adapters: Int, builds: Int, pusher: AdapterPusher, nextAdapter: Int, quick: Bool
    ) throws -> Measured {
        var random = SplitMix(seed: 42)
        let scale = quick ? 0.25 : 1.0
        var latencies: [(name: String, samples: [Double])] = []
        latencies.append(("ls (all tags)", try samples(calls: 50, budget: 4 * scale) { _ = try store.list() }))
        latencies.append(("show adapter", try samples(calls: 2000, budget: 4 * scale) {
            _ = try store.describe(try adapterReference(random.next(adapters)))
        }))
        latencies.append(("show build", try samples(calls: 2000, budget: 4 * scale) {
            _ = try store.describe(try buildReference(random.next(builds)))
        }))
        latencies.append(("lineage adapter", try samples(calls: 2000, budget: 4 * scale) {
            _ = try store.lineage(try adapterReference(random.next(adapters)))
        }))
        latencies.append(("lineage build", try samples(calls: 2000, budget: 4 * scale) {
            _ = try store.lineage(try buildReference(random.next(builds)))
        }))
        latencies.append(("lineage base", try samples(calls: 50, budget: 4 * scale) { _ = try store.lineage(base) }))
        // One more adapter at a time: write the folder untimed, time the push.
        var pushes: [Double] = []
        let clock = ContinuousClock()
        let start = clock.now
        while pushes.count < 40, pushes.count < 5 || (clock.now - start) < .seconds(6 * scale) {
            let index = nextAdapter + pushes.count
            let folder = try pusher.write(index, worker: 0)
            let reference = try adapterReference(index)
            pushes.append(try Timing.seconds { try store.push(folder, to: reference, options: PushOptions(base: base)) })
        }
        latencies.append(("push one more adapter", pushes))
        var next = nextAdapter + pushes.count
        var batches: [Double] = []
        let batchStart = clock.now
        while batches.count < 20, batches.count < 5 || (clock.now - batchStart) < .seconds(6 * scale) {
            batches.append(try pusher.pushBatch(next..<(next + timedBatchSize)).pushing)
            next += timedBatchSize
        }
        latencies.append(("batch push of \(timedBatchSize) adapters", batches))
        return Measured(latencies: latencies, pushed: next - nextAdapter)
    }

    /// Times `body` up to `calls` times or until `budget` seconds are spent (at least 5 calls).
    static func samples(calls: Int, budget: Double, _ body: () throws -> Void) throws -> [Double] {
        var samples: [Double] = []
        var spent = 0.0
        while samples.count < calls, samples.count < 5 || spent < budget {
            let time = try Timing.seconds(body)
            samples.append(time)
            spent += time
        }
        return samples
    }

    /// Nearest-rank percentile.
    static func percentile(_ samples: [Double], _ p: Double) -> Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    static func milliseconds(_ seconds: Double) -> String {
        let ms = seconds * 1000
        return ms >= 100 ? String(format: "%.0f ms", ms) : ms >= 10 ? String(format: "%.1f ms", ms) : String(format: "%.3f ms", ms)
    }

    static func indexSizes(_ store: Store) -> (main: Int, wal: Int, shm: Int) {
        func size(_ suffix: String) -> Int {
            let path = store.root.appending(path: "index.sqlite" + suffix).path
            return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        }
        return (size(""), size("-wal"), size("-shm"))
    }

    static func adapterReference(_ index: Int) throws -> Reference {
        try Reference(parsing: "adapters/a\(index):v1")
    }

    static func buildReference(_ index: Int) throws -> Reference {
        try Reference(parsing: "builds/b\(index):v1")
    }

    // MARK: Filling

    /// Writes and pushes the tiny adapters.
    struct AdapterPusher: Sendable {
        let store: Store
        let model: SyntheticModel
        let base: Reference
        let scratch: URL

        /// What one batch push cost.
        struct Batch {
            let count: Int
            let writing: Double
            let pushing: Double
            let removing: Double
        }

        /// Writes adapter `index` into `folder`, which must not exist.
        func write(_ index: Int, to folder: URL) throws {
            try SyntheticAdapter(base: model, rank: 1, targets: [.query], seed: UInt64(10_000 + index)).write(to: folder)
        }

        /// Writes adapter `index` into the scratch folder (replacing what was there) and returns the folder.
        func write(_ index: Int, worker: Int) throws -> URL {
            let folder = scratch.appending(path: "w\(worker)")
            try? FileManager.default.removeItem(at: folder)
            try write(index, to: folder)
            return folder
        }

        /// Writes the folders of adapters `indexes` on all cores under the scratch folder `slot`, pushes them in
        /// one batch, and removes them.
        func pushBatch(_ indexes: Range<Int>, slot: String = "batch") throws -> Batch {
            let folder = scratch.appending(path: slot)
            try? FileManager.default.removeItem(at: folder)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let first = indexes.lowerBound
            let writing = try IndexBenchmarks.parallel(count: indexes.count, budget: .infinity, workers: writers) { offset, _ in
                try write(first + offset, to: folder.appending(path: "\(first + offset)"))
            }.seconds
            let items = try indexes.map { index in
                PushItem(path: folder.appending(path: "\(index)"), reference: try IndexBenchmarks.adapterReference(index))
            }
            let pushing = try Timing.seconds { try store.push(items, options: PushOptions(base: base)) }
            let removing = Timing.seconds { try? FileManager.default.removeItem(at: folder) }
            return Batch(count: indexes.count, writing: writing, pushing: pushing, removing: removing)
        }
    }

    /// Work shared by the filling threads: the next index to claim, the deadline, the first error.
    final class Claims: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private var failure: Error?
        let count: Int
        let deadline: ContinuousClock.Instant?

        init(count: Int, budget: Double) {
            self.count = count
            deadline = budget.isFinite ? ContinuousClock.now + .milliseconds(Int(budget * 1000)) : nil
        }

        /// The next index, or nil when all are claimed, the budget is spent or a worker failed.
        func claim() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard failure == nil, next < count else { return nil }
            if let deadline, ContinuousClock.now >= deadline { return nil }
            next += 1
            return next - 1
        }

        func fail(_ error: Error) {
            lock.lock()
            defer { lock.unlock() }
            if failure == nil { failure = error }
        }

        var result: (claimed: Int, error: Error?) {
            lock.lock()
            defer { lock.unlock() }
            return (next, failure)
        }
    }

    /// Runs `body` for indexes 0..<count on `workers` threads until done or `budget` seconds have passed;
    /// returns how many ran and the wall-clock time.
    static func parallel(
        count: Int, budget: Double, workers: Int, _ body: @escaping @Sendable (_ index: Int, _ worker: Int) throws -> Void
    ) throws -> (done: Int, seconds: Double) {
        guard count > 0 else { return (0, 0) }
        let claims = Claims(count: count, budget: budget)
        let group = DispatchGroup()
        let seconds = Timing.seconds {
            for worker in 0..<workers {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    while let index = claims.claim() {
                        do { try body(index, worker) } catch {
                            claims.fail(error)
                            return
                        }
                    }
                }
                thread.stackSize = 4 << 20
                thread.start()
            }
            group.wait()
        }
        let result = claims.result
        if let error = result.error { throw error }
        return (result.claimed, seconds)
    }

    /// A seeded generator for picking tags.
    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Int(z % UInt64(max(bound, 1)))
        }
    }
}
