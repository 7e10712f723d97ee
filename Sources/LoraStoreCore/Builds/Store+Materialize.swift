import Foundation
import GRDB

extension Store {
    /// Runs a build's merge, writing the output folder and storing the tensors that differ from the base as
    /// blobs, then records everything in one transaction. The caller holds the build's exclusive lock.
    ///
    /// Tensors the adapters leave alone keep the base's blobs (no hashing, no copy). When the build was
    /// materialized before (and evicted), every tensor and file digest must equal the recorded one, else
    /// nothing is committed and the pull fails. The new blobs are published together (``BlobBatch``) once the
    /// folder is written. A crash before the commit leaves the build a recipe: the blobs written so far are
    /// temporary or unindexed files that garbage collection reclaims.
    func materialize(_ build: StoredManifest, to destination: URL, progress: ProgressHandler?) throws -> PullResult {
        try withMaintenanceLock(.shared) {
            try materializeHoldingLock(build, to: destination, progress: progress)
        }
    }

    private func materializeHoldingLock(
        _ build: StoredManifest, to destination: URL, progress: ProgressHandler?
    ) throws -> PullResult {
        guard let recipe = build.manifest.recipe else { throw StoreError.notFound(build.digest.description) }
        let (base, recorded) = try index.database.read { db in
            (try existingManifest(recipe.base, in: db), try BuildOutput.fetch(db, build: build.digest))
        }
        let plan = try MergePlan(base: base, adapters: recipe.adapters, options: recipe.options, store: self)
        if let recorded, recorded.tensors.map(\.name) != plan.tensors.map(\.name) {
            let (before, now) = (recorded.tensors.map(\.name), plan.tensors.map(\.name))
            throw StoreError.rebuildTensorsDiffer(
                build: build.digest, missing: before.filter { !Set(now).contains($0) }, added: now.filter { !Set(before).contains($0) })
        }
        // The error for bytes that differ from the record: a recipe of another engine version explains them.
        func mismatch(_ item: String, expected: Digest, actual: Digest) -> StoreError {
            recipe.engineVersion == BuildRecipe.currentEngineVersion
                ? .rebuildMismatch(build: build.digest, item: item, expected: expected, actual: actual)
                : .engineChanged(build: build.digest, recorded: recipe.engineVersion, current: BuildRecipe.currentEngineVersion, item: item)
        }
        let layout = try ModelLayout(
            tensors: plan.tensors.map { ($0.name, $0.dtype, $0.shape) },
            metadata: Self.buildProvenance(build.digest, recipe: recipe), maxShardSize: recipe.options.maxShardSize)
        let fileOfTensor = Dictionary(
            layout.files.flatMap { file in file.header.tensors.map { ($0.name, file.name) } },
            uniquingKeysWith: { first, _ in first })
        let writer = try ModelFolderWriter(destination: destination, layout: layout, computeDigests: true)
        try copyFiles(of: base.manifest, into: writer, outputType: recipe.options.outputType)
        let encoding = try codecPolicy()
        let counter = ProgressCounter(phase: "merging", total: plan.outputBytes, handler: progress)
        var tensors: [BuildOutput.Tensor] = []
        // The changed tensors' blobs: written unflushed (their writeback started) and published together
        // before the commit, so that no tensor waits for the disk while the next one could be merged.
        var staged: [BlobBatch.Staged] = []
        var adopted: [StoredBlob] = []
        var linked: [StoredBlob] = []
        var listedDigests: Set<Digest> = []
        var folderWritten = false
        do {
            let measured = try MergeEngine(plan: plan, store: self).run(measuring: true) { tensor, bytes in
                let reusesBase = tensor.reusesBaseBytes
                let expected = recorded?.tensors[tensors.count].digest
                let digest: Digest
                if reusesBase {
                    digest = tensor.base.digest
                    if let expected, expected != digest { throw mismatch(tensor.name, expected: expected, actual: digest) }
                    try writer.append(bytes)
                } else {
                    // The tensor's digest and blob on one thread, the folder's file (its own digest and write) on
                    // another: both only read the bytes, share no state, and each is mostly one core's work.
                    // A failed write is rethrown after the blob is listed, so that it is removed with the others.
                    let listed = listedDigests
                    let (blob, written) = try concurrently {
                        let digest = Digest(of: bytes)
                        if let expected, expected != digest { throw mismatch(tensor.name, expected: expected, actual: digest) }
                        if listed.contains(digest) { return BuildBlob.listed(digest) }
                        if let existing = try blobs.existingBlob(digest, logicalSize: bytes.count) {
                            return BuildBlob.existing(existing)
                        }
                        return BuildBlob.staged(
                            try BlobBatch.stage(
                                bytes, digest: digest, encoding: encoding.encoding(for: .build, dtype: tensor.dtype),
                                origin: "tensor \"\(tensor.name)\" of build \(build.digest.short)", in: blobs))
                    } _: {
                        Result { try writer.append(bytes) }
                    }
                    switch blob {
                    case .listed(let listed):
                        digest = listed
                    case .existing(let existing):
                        digest = existing.digest
                        adopted.append(existing)
                    case .staged(let blob):
                        digest = blob.digest
                        staged.append(blob)
                    }
                    listedDigests.insert(digest)
                    try written.get()
                }
                tensors.append(
                    BuildOutput.Tensor(
                        name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, file: fileOfTensor[tensor.name] ?? "",
                        digest: digest, size: bytes.count, changed: !reusesBase))
                counter.add(bytes.count)
            }
            let report = BuildReport(build: build.digest, options: recipe.options, tensors: measured)
            try Self.checkAdapterLoss(
                report.adapterLoss, options: recipe.options, scheme: base.manifest.quantization?.values.first?.scheme)
            try writer.finish { try writeSeparateAdapters(of: recipe, into: $0) }
            folderWritten = true
            let files = layout.files.compactMap { file in
                writer.fileDigests[file.name].map { BuildOutput.File(name: file.name, digest: $0, size: file.header.fileSize) }
            }
            if let recorded {
                for file in Set(files.map(\.name)).union(recorded.files.map(\.name)).sorted() {
                    let (expected, actual) = (recorded.files.first { $0.name == file }?.digest, files.first { $0.name == file }?.digest)
                    guard expected == actual else {
                        // A file only one side has compares against the digest of no bytes.
                        let none = Digest(of: Data())
                        throw mismatch(file, expected: expected ?? none, actual: actual ?? none)
                    }
                }
            }
            let created = try BlobBatch.publish(staged, adopting: adopted.map(\.digest), in: blobs, linked: &linked)
            // A blob another writer linked first is that writer's file, equally valid, and the build's too;
            // if that writer failed and removed it since, the build cannot be recorded without it.
            let createdDigests = Set(created.map(\.digest))
            let placedByOthers = try staged.filter { !createdDigests.contains($0.digest) }.map { blob in
                guard let existing = try blobs.existingBlob(blob.digest, logicalSize: blob.logicalSize) else {
                    throw BlobStoreError.missing(blob.digest)
                }
                return existing
            }
            try commitMaterialization(
                build.digest, output: BuildOutput(tensors: tensors, files: files), report: report,
                blobs: created + adopted + placedByOthers, firstTime: recorded == nil)
            return PullResult(
                digest: build.digest, kind: .build, destination: destination.path,
                files: Dictionary(files.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first }),
                bytes: writer.bytesWritten, merged: true, rebuilt: recorded != nil, evicted: [], report: report)
        } catch {
            BlobBatch.discard(staged)
            removeUnindexed(linked.map(\.digest), after: error)
            // A folder whose files disagree with the record is not handed out.
            if folderWritten { try? FileManager.default.removeItem(at: destination) }
            throw error
        }
    }

    /// Where a changed tensor's blob comes from: an earlier tensor of the same build with the same bytes, a
    /// file already in the store (another build's, or this one's from before an eviction that kept it), or a
    /// new one staged for the publish.
    private enum BuildBlob {
        case listed(Digest)
        case existing(StoredBlob)
        case staged(BlobBatch.Staged)
    }

    /// Refuses a build whose output loses more of its adapters than its limit allows
    /// (``MergeOptions/effectiveMaxAdapterLoss``), with the measured loss and what to do instead.
    static func checkAdapterLoss(_ loss: Double?, options: MergeOptions, scheme: QuantizationScheme?) throws {
        // NaN (a non-finite value measured) is no pass either.
        guard let limit = options.effectiveMaxAdapterLoss, let loss, !(loss <= limit) else { return }
        let how: String
        let instead: String
        switch options.quantizedBase {
        case .requantize:
            how = "requantized in \(scheme?.rawValue ?? "the base's scheme")"
            instead = "the separate policy (the adapters applied at inference) or the dequantize policy (a float output)"
        case .dequantize:
            how = "merged into \(options.outputType?.rawValue ?? "the base's float types")"
            instead = "the separate policy (the adapters applied at inference) or a wider float output (--dtype F32)"
        case .separate, nil:
            how = "merged into \(options.outputType?.rawValue ?? "the base's types")"
            instead = "a wider float output (--dtype F32), or the separate policy on a quantized base"
        }
        // Three significant digits: a limit of 0.0001 must not read as 0.000.
        func figure(_ value: Double) -> String { String(format: "%.3g", value) }
        throw StoreError.mergeRefused(
            "the build loses \(figure(loss)) of its adapters when \(how): its output is that far from the exact merge, "
                + "as a share of the adapters' size (‖W_out − W_exact‖ / ‖Δ‖; the limit is \(figure(limit))); nothing was "
                + "stored. Build it with \(instead), or raise --max-adapter-loss")
    }

    private func commitMaterialization(
        _ build: Digest, output: BuildOutput, report: BuildReport, blobs written: [StoredBlob], firstTime: Bool
    ) throws {
        try index.database.write { db in
            let now = Date().timeIntervalSince1970
            for blob in written {
                guard blobs.storedSize(of: blob.digest) == blob.storedSize else {
                    throw BlobStoreError.missing(blob.digest)
                }
                try db.execute(
                    sql: "INSERT OR IGNORE INTO blob (digest, logical_size, stored_size, codec, created_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [blob.digest, blob.logicalSize, blob.storedSize, blob.codec, now])
                try db.execute(
                    sql: "INSERT OR IGNORE INTO build_blob (build_digest, blob_digest) VALUES (?, ?)", arguments: [build, blob.digest])
            }
            if firstTime {
                try output.insert(db, build: build)
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO build_report (build_digest, content, created_at) VALUES (?, ?, ?)",
                arguments: [build, try CanonicalJSON.encode(report), now])
            try db.execute(
                sql: """
                    UPDATE build SET state = 'materialized', materializations = materializations + 1, materialized_at = ?1,
                        last_pulled_at = ?1
                    WHERE digest = ?2
                    """,
                arguments: [now, build])
        }
    }
}
