import Foundation
import GRDB

extension Store {
    /// Runs a build's merge, writing the output folder and storing the tensors that differ from the base as
    /// blobs, then records everything in one transaction. The caller holds the build's exclusive lock.
    ///
    /// Tensors the adapters leave alone keep the base's blobs (no hashing, no copy). When the build was
    /// materialized before (and evicted), every tensor and file digest must equal the recorded one, else
    /// nothing is committed and the pull fails. A crash before the commit leaves the build a recipe: the
    /// blobs written so far are unindexed files that garbage collection reclaims.
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
            guard let base = try manifest(recipe.base, in: db) else { throw StoreError.notFound(recipe.base.description) }
            return (base, try BuildOutput.fetch(db, build: build.digest))
        }
        let plan = try MergePlan(base: base, adapters: recipe.adapters, options: recipe.options, store: self)
        let layout = try ModelLayout(
            tensors: plan.tensors.map { ($0.name, $0.dtype, $0.shape) },
            metadata: Self.buildProvenance(build.digest, recipe: recipe), maxShardSize: recipe.options.maxShardSize)
        let fileOfTensor = Dictionary(
            layout.files.flatMap { file in file.header.tensors.map { ($0.name, file.name) } },
            uniquingKeysWith: { first, _ in first })
        let writer = try ModelFolderWriter(destination: destination, layout: layout, computeDigests: true)
        try copyFiles(of: base.manifest, into: writer)
        let encoding = try codecPolicy()
        let counter = ProgressCounter(phase: "merging", total: plan.outputBytes, handler: progress)
        var tensors: [BuildOutput.Tensor] = []
        var stored: [StoredBlob] = []
        do {
            try MergeEngine(plan: plan, store: self).run { tensor, bytes in
                let reusesBase = !tensor.isChanged && tensor.dtype == tensor.base.dtype
                let digest = reusesBase ? tensor.base.digest : Digest(of: bytes)
                if let expected = recorded?.tensors[tensors.count].digest, expected != digest {
                    throw StoreError.rebuildMismatch(build: build.digest, item: tensor.name, expected: expected, actual: digest)
                }
                if !reusesBase {
                    stored.append(
                        try blobs.write(bytes, digest: digest, encoding: encoding.encoding(for: .build, dtype: tensor.dtype)))
                }
                try writer.append(bytes)
                tensors.append(
                    BuildOutput.Tensor(
                        name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, file: fileOfTensor[tensor.name] ?? "",
                        digest: digest, size: bytes.count, changed: !reusesBase))
                counter.add(bytes.count)
            }
            try writer.finish()
            let files = layout.files.compactMap { file in
                writer.fileDigests[file.name].map { BuildOutput.File(name: file.name, digest: $0, size: file.header.fileSize) }
            }
            for file in files {
                if let expected = recorded?.files.first(where: { $0.name == file.name })?.digest, expected != file.digest {
                    throw StoreError.rebuildMismatch(build: build.digest, item: file.name, expected: expected, actual: file.digest)
                }
            }
            try commitMaterialization(build.digest, output: BuildOutput(tensors: tensors, files: files), blobs: stored, firstTime: recorded == nil)
            return PullResult(
                digest: build.digest, kind: .build, destination: destination.path,
                files: Dictionary(files.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first }),
                bytes: plan.outputBytes, merged: true, rebuilt: recorded != nil, evicted: [])
        } catch {
            removeUnindexed(stored.filter(\.created).map(\.digest))
            throw error
        }
    }

    private func commitMaterialization(_ build: Digest, output: BuildOutput, blobs written: [StoredBlob], firstTime: Bool) throws {
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
                sql: """
                    UPDATE build SET state = 'materialized', materializations = materializations + 1, materialized_at = ?
                    WHERE digest = ?
                    """,
                arguments: [now, build])
        }
    }
}
