import Foundation
import GRDB

extension Store {
    /// Pushes a base model or PEFT adapter from `path` and tags it `reference`.
    ///
    /// Everything is validated before anything is added to the store: safetensors structure, shard index, NaN
    /// and infinity, and for adapters every key and shape against the base. New tensors are written to
    /// temporary files as soon as each is hashed (``EarlyStaging``), so the disk works while the rest is
    /// checked; once all is valid they are made durable and linked into place together (existing blobs are
    /// reused, so a model pushed twice or in another shard layout adds no tensor bytes), and one transaction
    /// records blobs, manifest and tag. The push holds the maintenance lock shared from its first read of the
    /// tensors, so garbage collection waits for its hashing too. A push that fails leaves the store as it was,
    /// except when the index itself fails (its disk full, say): then blob files the push linked may stay,
    /// unreferenced, until `lorastore gc` removes them, since only the index can tell whether another
    /// writer adopted them.
    @discardableResult
    public func push(_ path: URL, to reference: Reference, options: PushOptions = PushOptions()) throws -> PushResult {
        guard let repository = reference.repository, let tag = reference.tag else {
            throw StoreError.invalidInput(path: reference.description, reason: "push to a tag (NAME[:TAG]), not a digest")
        }
        let source = try PushSource.inspect(path, kind: options.kind)
        try checkRepositoryKind(repository, kind: source.kind)
        guard let scheme = options.quantize else {
            return try withMaintenanceLock(.shared) {
                let staging = EarlyStaging(blobs: blobs)
                do {
                    let prepared = try prepare(source, repository: repository, options: options, staging: staging)
                    return try store(
                        prepared, repository: repository, tag: tag, skipped: prepared.skipped, progress: options.progress,
                        prestaged: staging.take())
                } catch {
                    staging.discard()
                    throw error
                }
            }
        }
        let prepared = try prepare(source, repository: repository, options: options)
        guard source.kind == .base else {
            throw StoreError.invalidInput(path: path.path, reason: "only a base model can be quantized, not an adapter")
        }
        let quantization = try BaseQuantization(
            base: prepared.manifest, scheme: scheme, tensors: nil, policy: try codecPolicy(), progress: options.progress
        ) { entry in
            guard let blob = prepared.blobs[entry.digest] else { throw BlobStoreError.missing(entry.digest) }
            return try blob.withBytes { try FloatConversion.floats($0, dtype: entry.dtype) }
        }
        let needed = quantization.manifest.blobDigests
        let quantized = PreparedPush(
            manifest: quantization.manifest,
            blobs: prepared.blobs.filter { needed.contains($0.key) }.merging(quantization.blobs) { first, _ in first },
            adapter: nil)
        return try withMaintenanceLock(.shared) {
            try store(
                quantized, repository: repository, tag: tag, skipped: prepared.skipped,
                quantization: quantization.summary, progress: options.progress)
        }
    }

    /// Writes the blobs of `prepared` the store lacks (reusing existing ones, and the `prestaged` ones) and
    /// records blobs, manifest and tag in one transaction; on failure removes the blob files it created. The
    /// caller holds the maintenance lock shared.
    func store(
        _ prepared: PreparedPush, repository: String, tag: String, skipped: [String],
        quantization: QuantizationSummary? = nil, progress: ProgressHandler?, prestaged: [Digest: BlobBatch.Staged] = [:]
    ) throws -> PushResult {
        let push = try ValidatedPush(
            prepared, repository: repository, tag: tag, skipped: skipped, quantization: quantization)
        return try store([push], progress: progress, prestaged: prestaged)[0]
    }

    /// Writes the blobs the store lacks for all of `pushes` (each once, reusing existing ones), makes them
    /// durable together (see ``BlobBatch``), then records every blob, manifest and tag in one transaction, in
    /// the order given. On failure it removes the blob files it created, so the store is as it was.
    ///
    /// The caller holds the maintenance lock shared, which keeps garbage collection from sweeping between
    /// the check for existing blobs, the writes, and the commit. A build's cache eviction removes rows without
    /// that lock (it deletes files only with it, exclusively), so a blob found indexed may no longer be by the
    /// commit; the push then writes it again, once.
    ///
    /// `prestaged` are blobs of the pushes already staged (``EarlyStaging``); this call publishes or removes
    /// their temporary files.
    func store(
        _ pushes: [ValidatedPush], progress: ProgressHandler?, prestaged: [Digest: BlobBatch.Staged] = [:]
    ) throws -> [PushResult] {
        var pending: [Digest: PendingBlob] = [:]
        for push in pushes {
            pending.merge(push.prepared.blobs) { first, _ in first }
        }
        var linked: [StoredBlob] = []
        // Handed to the first attempt, which publishes or removes them; a second one writes what it needs.
        var prestaged = prestaged
        do {
            var created: [StoredBlob] = []
            var recorded: [(tagged: Digest?, manifestExisted: Bool)] = []
            for attempt in 1...2 {
                do {
                    let handed = prestaged
                    prestaged = [:]
                    let written = try writeMissing(pending, progress: progress, linked: &linked, prestaged: handed) {
                        try pushes.forEach { try $0.prepared.checkSourcesUnchanged() }
                    }
                    created += written.created
                    recorded = try index.database.write { db in
                        let now = Date().timeIntervalSince1970
                        return try pushes.map { push in
                            try record(
                                push.prepared, digest: push.digest, json: push.json, repository: push.repository,
                                tag: push.tag, in: db, restored: written.restored, now: now)
                        }
                    }
                    break
                } catch BlobStoreError.missing where attempt == 1 {
                    continue
                }
            }
            var unclaimed = Dictionary(created.map { ($0.digest, $0) }) { first, _ in first }
            return zip(pushes, recorded).map { push, recorded in
                let mine = push.prepared.blobs.keys.compactMap { unclaimed.removeValue(forKey: $0) }
                let newLogical = mine.reduce(0) { $0 + $1.logicalSize }
                let manifest = push.prepared.manifest
                return PushResult(
                    reference: "\(push.repository):\(push.tag)", digest: push.digest, kind: manifest.kind,
                    previousDigest: recorded.tagged, tensorCount: manifest.tensors.count,
                    fileCount: manifest.files.count, logicalBytes: manifest.logicalSize, newBlobs: mine.count,
                    newLogicalBytes: newLogical, newStoredBytes: mine.reduce(0) { $0 + $1.storedSize },
                    reusedBytes: manifest.logicalSize - newLogical, manifestExisted: recorded.manifestExisted,
                    skippedFiles: push.skipped, quantization: push.quantization)
            }
        } catch {
            removeUnindexed(linked.map(\.digest), after: error)
            throw error
        }
    }

    /// Writes and publishes the blobs of `pending` that have no file: those the index lacks, and those it
    /// lists whose file is gone (`restored`: a push puts them back), taking the `prestaged` ones as they are.
    /// `checkStaged` runs once every blob is staged and before any is linked into place, where another writer
    /// could adopt it. Returns the files it created; `linked` also receives them as soon as each exists. Every
    /// temporary file of `prestaged` is published or removed, whatever happens.
    private func writeMissing(
        _ pending: [Digest: PendingBlob], progress: ProgressHandler?, linked: inout [StoredBlob],
        prestaged: [Digest: BlobBatch.Staged], checkStaged: () throws -> Void
    ) throws -> (created: [StoredBlob], restored: Set<Digest>) {
        // The temporary files not published yet, removed on the way out (publishing removes the names too).
        var ready = Array(prestaged.values)
        defer { BlobBatch.discard(ready) }
        let known = try index.database.read { db in try indexedBlobs(among: pending.keys, in: db) }
        var onDisk = Set(pending.keys.filter { blobs.storedSize(of: $0) != nil })
        // A file in place without a row was linked by another writer that has not committed (whole; its
        // folder is flushed with ours before the index points at it), or is one nothing references, which
        // the disk may have damaged since: it is adopted only if it reads back as its digest, and otherwise
        // this push's bytes are renamed over it (never removed first: another writer may be about to index
        // it). Such files are rare, so hashing them costs next to nothing.
        let unindexed = onDisk.filter { !known.contains($0) }
        let damaged = unindexed.filter { digest in !blobs.isWhole(digest, logicalSize: pending[digest]?.size ?? -1) }
        onDisk.subtract(damaged)
        let adopted = unindexed.subtracting(damaged)
        // A staged blob another writer placed meanwhile is left to that writer's file.
        let unneeded = { (blob: BlobBatch.Staged) in onDisk.contains(blob.digest) || pending[blob.digest] == nil }
        BlobBatch.discard(ready.filter(unneeded))
        ready.removeAll(where: unneeded)
        let missing = pending.filter { !onDisk.contains($0.key) && prestaged[$0.key] == nil }.sorted { $0.key < $1.key }
        let counter = ProgressCounter(
            phase: "writing", total: missing.reduce(0) { $0 + $1.value.size }, handler: progress)
        let attempts = try missing.parallelMap { digest, blob in
            Result {
                defer { counter.add(blob.size) }
                return try blob.withBytes {
                    try BlobBatch.stage($0, digest: digest, encoding: blob.encoding, origin: blob.origin, in: blobs)
                }
            }
        }
        var failure: (any Error)?
        for attempt in attempts {
            switch attempt {
            case .success(let blob): ready.append(blob)
            case .failure(let error): failure = failure ?? error
            }
        }
        if let failure { throw failure }
        try checkStaged()
        let created = try BlobBatch.publish(ready, adopting: Array(adopted), replacing: damaged, in: blobs, linked: &linked)
        return (created, known.subtracting(onDisk))
    }

    /// Refuses to push a `kind` into a repository that holds another kind.
    func checkRepositoryKind(_ repository: String, kind: ManifestKind) throws {
        let existing = try index.database.read { db in
            try ManifestKind.fetchOne(db, sql: "SELECT kind FROM repository WHERE name = ?", arguments: [repository])
        }
        if let existing, existing != kind {
            throw StoreError.repositoryKind(repository: repository, holds: existing, pushed: kind)
        }
    }

    /// Removes blob files this process created that no index row references, after `failure`.
    ///
    /// When the failure is the index kept busy by another process (``StoreIndex/isBusy(_:)``), the files are
    /// left to garbage collection: asking the index again would wait out its busy timeout a second time
    /// before the caller could report the first.
    func removeUnindexed(_ digests: [Digest], after failure: any Error) {
        guard !digests.isEmpty, !StoreIndex.isBusy(failure) else { return }
        try? index.database.write { db in
            for digest in digests {
                if try !isIndexed(digest, in: db) { try? blobs.remove(digest) }
            }
        }
    }

    /// Records everything in one transaction, describing each new blob from the file on disk (which must be
    /// there: an index row never points at a missing file). Also records manifests received by a registry
    /// server, whose blobs were indexed as they were uploaded.
    func commit(
        _ prepared: PreparedPush, digest: Digest, json: Data, repository: String, tag: String
    ) throws -> (tagged: Digest?, manifestExisted: Bool) {
        try index.database.write { db in
            try record(prepared, digest: digest, json: json, repository: repository, tag: tag, in: db)
        }
    }

    /// Records the blobs (those not indexed yet, and the `restored` ones whose files this push wrote again),
    /// the manifest (unless it exists) and the tag of one push inside the caller's transaction. Returns the
    /// digest the tag pointed at before and whether the manifest already existed.
    func record(
        _ prepared: PreparedPush, digest: Digest, json: Data, repository: String, tag: String, in db: Database,
        restored: Set<Digest> = [], now: TimeInterval = Date().timeIntervalSince1970
    ) throws -> (tagged: Digest?, manifestExisted: Bool) {
        for (blobDigest, blob) in prepared.blobs {
            if !restored.contains(blobDigest), try isIndexed(blobDigest, in: db) { continue }
            guard let onDisk = try blobs.existingBlob(blobDigest, logicalSize: blob.size) else {
                throw BlobStoreError.missing(blobDigest)
            }
            // A restored blob keeps its row, brought up to date with the new file's codec and size.
            try db.cachedStatement(
                sql: """
                    INSERT INTO blob (digest, logical_size, stored_size, codec, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (digest) DO UPDATE SET stored_size = excluded.stored_size, codec = excluded.codec
                    """
            ).execute(arguments: [blobDigest, blob.size, onDisk.storedSize, onDisk.codec, now])
        }
        let existed = try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM manifest WHERE digest = ?)"), arguments: [digest]
        ) ?? false
        if !existed {
            try db.cachedStatement(
                sql: "INSERT INTO manifest (digest, kind, content, logical_size, base_digest, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            ).execute(
                arguments: [digest, prepared.manifest.kind, json, prepared.manifest.logicalSize, prepared.manifest.base, now])
            let manifestBlob = try db.cachedStatement(
                sql: "INSERT INTO manifest_blob (manifest_digest, blob_digest) VALUES (?, ?)")
            for blobDigest in prepared.manifest.blobDigests {
                try manifestBlob.execute(arguments: [digest, blobDigest])
            }
            if let adapter = prepared.adapter {
                try adapter.insert(db, manifest: digest)
            }
        }
        let previous = try tagManifest(
            digest, kind: prepared.manifest.kind, repository: repository, tag: tag, in: db, now: now)
        return (previous, existed)
    }
}
