import Foundation
import GRDB

extension Store {
    /// Writes what `text` names into `destination` as a standard folder: a base model (its own shard layout
    /// and files), an adapter (PEFT layout), or a merged build. `text` may be an ad-hoc recipe
    /// (`BASE+ADAPTER[@WEIGHT]+...`, merged with `options`); for anything else `options` must be the default,
    /// since a stored build carries its own.
    ///
    /// A build's first pull merges and stores only the tensors that differ from the base; later pulls
    /// assemble the folder from blobs without merging. A build that was evicted is rebuilt and its bytes must
    /// equal the digests recorded the first time. Concurrent pulls of one build, in threads or processes,
    /// merge it once; a build being read is not evicted.
    ///
    /// With `dequantize`, a quantized base is written with its quantized weights dequantized to that type
    /// (F32, F16 or BF16) instead of in their stored layout; anything else is refused. An ad-hoc recipe's
    /// adapters pushed against another model than its base are refused unless `allowingOtherBase`, as
    /// ``createBuild(base:adapters:options:tag:visibleTo:allowingOtherBase:)`` refuses them.
    @discardableResult
    public func pull(
        _ text: String, to destination: URL, options: MergeOptions = MergeOptions(), dequantize: DType? = nil,
        allowingOtherBase: Bool = false, progress: ProgressHandler? = nil
    ) throws -> PullResult {
        try pull(
            text, to: destination, options: options, dequantize: dequantize, allowingOtherBase: allowingOtherBase,
            progress: progress, enforcingBudget: true)
    }

    /// ``pull(_:to:options:dequantize:allowingOtherBase:progress:)``, evicting builds to fit the cache budget
    /// afterwards only when `enforcingBudget` (a server first takes a hold on the build it serves, then
    /// enforces it).
    func pull(
        _ text: String, to destination: URL, options: MergeOptions, dequantize: DType?, allowingOtherBase: Bool = false,
        progress: ProgressHandler?, enforcingBudget: Bool
    ) throws -> PullResult {
        let build: StoredManifest
        let lock: FileLock
        var adHocRecipe: BuildRecipe?
        if let adHoc = try AdHocRecipe(parsing: text) {
            guard dequantize == nil else {
                throw StoreError.invalidInput(path: text, reason: "is a build recipe, not a quantized base; there is nothing to dequantize")
            }
            // The build's lock comes before its recording: garbage collection removes an untagged build only
            // while it can take that lock, so the recipe recorded here (again, if a collection removed it
            // since an earlier pull) stays while the lock is held.
            let recipe = try recipe(base: adHoc.base, adapters: adHoc.adapters, options: options)
            adHocRecipe = recipe
            lock = try buildLock(try Self.buildManifest(of: recipe).digest)
            try lock.lock(.shared)
            do {
                build = try existingManifest(try record(recipe, allowingOtherBase: allowingOtherBase), named: text)
            } catch {
                lock.unlock()
                throw error
            }
        } else {
            let stored = try resolve(try Reference(parsing: text))
            guard options == MergeOptions() else {
                let pulled = stored.kind == .build
                    ? "a stored build is pulled with the options recorded when it was created (lorastore build create)"
                    : "\(text) is \(stored.kind == .base ? "a base" : "an adapter"), pulled as it was pushed"
                throw StoreError.invalidInput(
                    path: text, reason: "merge options apply to ad-hoc recipes (BASE+ADAPTER[@WEIGHT]...); \(pulled)")
            }
            guard !allowingOtherBase else {
                throw StoreError.invalidInput(
                    path: text, reason: "allowing another base applies to ad-hoc recipes (BASE+ADAPTER[@WEIGHT]...) and to build create")
            }
            if let dequantize {
                return try pullDequantized(stored, named: text, as: dequantize, to: destination, progress: progress)
            }
            guard stored.kind == .build else {
                return try pullStored(stored, to: destination, progress: progress)
            }
            lock = try buildLock(stored.digest)
            try lock.lock(.shared)
            do {
                // Resolved before it was held, the build may have been untagged and collected since.
                build = try existingManifest(stored.digest, named: text)
            } catch {
                lock.unlock()
                throw error
            }
        }
        var result = try pull(build, named: text, recipe: adHocRecipe, holding: lock, to: destination, progress: progress)
        if enforcingBudget { result.evicted = try enforceCacheBudget() }
        return result
    }

    /// The stored manifest `digest`, which `text` named; not found when it is gone.
    private func existingManifest(_ digest: Digest, named text: String) throws -> StoredManifest {
        try index.database.read { db in
            guard let stored = try manifest(digest, in: db) else { throw StoreError.notFound(text) }
            return stored
        }
    }

    /// Pulls a build (which `text` named, from `recipe` when it is an ad-hoc one) whose lock the caller holds
    /// shared, and releases it: assembles the build from its stored output, or materializes it first under
    /// the exclusive lock, and records the pull.
    private func pull(
        _ build: StoredManifest, named text: String, recipe: BuildRecipe?, holding lock: FileLock, to destination: URL,
        progress: ProgressHandler?
    ) throws -> PullResult {
        defer { lock.unlock() }
        if let output = try materializedOutput(of: build.digest) {
            let result = try assemble(build, output: output, to: destination, progress: progress)
            try recordPull(of: build.digest)
            return result
        }
        try lock.lock(.exclusive)
        // `flock` converts a shared lock by releasing it first, so a collection may have taken and removed
        // the build meanwhile: an ad-hoc recipe is recorded again, a stored build must still be there.
        let stillThere = try index.database.read { db in try manifest(build.digest, in: db) != nil }
        if !stillThere {
            guard let recipe else { throw StoreError.notFound(text) }
            // Recorded by this pull a moment ago, its adapters' bases checked or allowed then.
            try record(recipe, allowingOtherBase: true)
        }
        let result = if let output = try materializedOutput(of: build.digest) {
            try assemble(build, output: output, to: destination, progress: progress)
        } else {
            try materialize(build, to: destination, progress: progress)
        }
        try recordPull(of: build.digest)
        return result
    }

    /// Marks a build as just pulled: eviction takes the least recently pulled first, and garbage collection
    /// counts an untagged build's age from it.
    func recordPull(of build: Digest) throws {
        try index.database.write { db in
            try db.execute(
                sql: "UPDATE build SET last_pulled_at = ? WHERE digest = ?", arguments: [Date().timeIntervalSince1970, build])
        }
    }

    /// The lock that serialises materializing a build and keeps eviction away from its readers.
    func buildLock(_ digest: Digest) throws -> FileLock {
        let folder = root.appending(path: "locks")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try FileLock(path: folder.appending(path: "build-\(digest.hex).lock").path)
    }

    /// Whether the build `digest` is materialized now: its merged tensors are stored, so a pull copies them.
    public func isMaterialized(_ digest: Digest) throws -> Bool {
        try materializedOutput(of: digest) != nil
    }

    /// The recorded output of a build that is materialized now, else nil.
    func materializedOutput(of build: Digest) throws -> BuildOutput? {
        try index.database.read { db in
            let state = try String.fetchOne(db, sql: "SELECT state FROM build WHERE digest = ?", arguments: [build])
            guard state == "materialized" else { return nil }
            return try BuildOutput.fetch(db, build: build)
        }
    }

    /// Writes a materialized build from blobs: no merging, just reads and writes.
    private func assemble(
        _ build: StoredManifest, output: BuildOutput, to destination: URL, progress: ProgressHandler?
    ) throws -> PullResult {
        guard let recipe = build.manifest.recipe else { throw StoreError.notFound(build.digest.description) }
        let base = try index.database.read { db in try existingManifest(recipe.base, in: db) }
        let layout = try output.layout(build: build.digest, recipe: recipe)
        let writer = try ModelFolderWriter(destination: destination, layout: layout)
        try copyFiles(of: base.manifest, into: writer, outputType: recipe.options.outputType)
        try writeTensors(output.tensors.map(\.digest), sizes: output.tensors.map(\.size), into: writer, progress: progress)
        try writer.finish { try writeSeparateAdapters(of: recipe, into: $0) }
        return PullResult(
            digest: build.digest, kind: .build, destination: destination.path,
            files: Dictionary(output.files.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first }),
            bytes: writer.bytesWritten, merged: false, rebuilt: false, evicted: [])
    }

    /// For a build with the ``QuantizedBuildPolicy/separate`` policy, writes each adapter untouched, as a PEFT
    /// folder `adapters/<position>-<digest prefix>` inside the build's folder (positions from 1, in recipe
    /// order); nothing for other builds.
    func writeSeparateAdapters(of recipe: BuildRecipe, into destination: URL) throws {
        guard recipe.options.quantizedBase == .separate else { return }
        try FileManager.default.createDirectory(
            at: destination.appending(path: Self.separateAdaptersFolder), withIntermediateDirectories: true)
        for (position, adapter) in recipe.adapters.enumerated() {
            let stored = try index.database.read { db in try existingManifest(adapter.digest, in: db) }
            let folder = destination.appending(path: Self.separateAdapterFolder(position: position, digest: adapter.digest))
            _ = try pullStored(stored, to: folder, progress: nil)
        }
    }

    /// The folder of a `separate` build that holds its adapters.
    static let separateAdaptersFolder = "adapters"

    /// Where a `separate` build's adapter at `position` (from 0, in recipe order) goes inside the build's
    /// folder: `adapters/<position + 1>-<digest prefix>`.
    static func separateAdapterFolder(position: Int, digest: Digest) -> String {
        "\(separateAdaptersFolder)/\(position + 1)-\(digest.short)"
    }

    /// The fidelity report of a materialized build (see ``BuildReport``); nil when it was never
    /// materialized.
    public func buildReport(_ reference: Reference) throws -> BuildReport? {
        try index.database.read { db in
            let build = try resolve(reference, as: .build, in: db)
            guard let json = try Data.fetchOne(
                db, sql: "SELECT content FROM build_report WHERE build_digest = ?", arguments: [build.digest])
            else { return nil }
            return try JSONDecoder().decode(BuildReport.self, from: json)
        }
    }

    /// Writes a stored base or adapter in its own layout, with its small files.
    private func pullStored(_ stored: StoredManifest, to destination: URL, progress: ProgressHandler?) throws -> PullResult {
        let writer = try ModelFolderWriter(destination: destination, layout: try ModelLayout(manifest: stored.manifest))
        try copyFiles(of: stored.manifest, into: writer, includingShardIndex: true)
        try writeTensors(
            stored.manifest.tensors.map(\.digest), sizes: stored.manifest.tensors.map(\.size), into: writer, progress: progress)
        try writer.finish()
        return PullResult(
            digest: stored.digest, kind: stored.kind, destination: destination.path, files: [:],
            bytes: writer.bytesWritten, merged: false, rebuilt: false, evicted: [])
    }

    /// Streams blobs, in order, into a model folder.
    private func writeTensors(
        _ digests: [Digest], sizes: [Int], into writer: ModelFolderWriter, progress: ProgressHandler?
    ) throws {
        let codecs = try index.database.read { db in try self.codecs(of: Set(digests), in: db) }
        let counter = ProgressCounter(phase: "writing", total: sizes.reduce(0, +), handler: progress)
        for (digest, size) in zip(digests, sizes) {
            guard let codec = codecs[digest] else { throw BlobStoreError.missing(digest) }
            let contents = try blobs.read(digest, codec: codec, size: size)
            try writer.append(contents.bytes)
            counter.add(size)
        }
    }

    /// The `__metadata__` of a build's files: a function of the recipe alone, so rebuilds give the same bytes.
    static func buildProvenance(_ build: Digest, recipe: BuildRecipe) -> [String: String] {
        recipe.provenance(["lorastore.build": build.description, "lorastore.engine": recipe.engineVersion])
    }
}
