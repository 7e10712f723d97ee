import Foundation
import GRDB

extension Store {
    /// The digests among `digests` that the store has no indexed blob for (what a client must upload).
    ///
    /// For a pusher limited to some repositories (`visibility` short of ``RepositoryVisibility/all``), a blob
    /// counts as there only when the pusher may read it or it was uploaded for `repository`: otherwise the
    /// client must send its bytes, which proves holding them (the blob is not stored twice).
    public func missingBlobs(
        among digests: [Digest], for repository: String? = nil, visibleTo visibility: RepositoryVisibility = .all
    ) throws -> [Digest] {
        try index.database.read { db in
            try digests.filter { digest in
                guard try isIndexed(digest, in: db) else { return true }
                return try !isAvailable(digest, to: repository, visibleTo: visibility, in: db)
            }
        }
    }

    /// Whether a pusher to `repository` who reads what `visibility` allows may name the indexed blob
    /// `digest` in a manifest: it reads a manifest holding it, or it was uploaded for `repository`.
    private func isAvailable(
        _ digest: Digest, to repository: String?, visibleTo visibility: RepositoryVisibility, in db: Database
    ) throws -> Bool {
        guard !visibility.isAll else { return true }
        if try isVisible(blob: digest, to: visibility, in: db) { return true }
        guard let repository else { return false }
        return try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM repository_upload WHERE repository = ? AND blob_digest = ?"),
            arguments: [repository, digest]) ?? false
    }

    /// The logical size and codec of an indexed blob, or nil.
    public func blobInfo(_ digest: Digest) throws -> (logicalSize: Int, codec: BlobCodec)? {
        try index.database.read { db in
            try Row.fetchOne(db, sql: "SELECT logical_size, codec FROM blob WHERE digest = ?", arguments: [digest])
                .map { ($0["logical_size"], $0["codec"]) }
        }
    }

    /// Stores and indexes bytes already checked to hash to `digest`, referenced by nothing yet (the blob
    /// counts as unreferenced until a manifest names it; garbage collection spares it for its grace period).
    /// The upload is recorded for `repository`, which lets a pusher limited to some repositories name the
    /// blob there (see ``missingBlobs(among:for:visibleTo:)``).
    func storeReceivedBlob(
        _ bytes: UnsafeRawBufferPointer, digest: Digest, encoding: BlobEncoding, spooledFile: String, repository: String
    ) throws -> StoredBlob {
        try withMaintenanceLock(.shared) {
            var stored = try blobs.write(bytes, digest: digest, encoding: encoding, spooledFile: spooledFile)
            do {
                try index.database.write { db in
                    stored = try restoreIfRemoved(stored, bytes: bytes, encoding: encoding, spooledFile: spooledFile)
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO blob (digest, logical_size, stored_size, codec, created_at) VALUES (?, ?, ?, ?, ?)",
                        arguments: [digest, stored.logicalSize, stored.storedSize, stored.codec, Date().timeIntervalSince1970])
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO repository_upload (repository, blob_digest) VALUES (?, ?)",
                        arguments: [repository, digest])
                }
            } catch {
                if stored.created { removeUnindexed([digest], after: error) }
                throw error
            }
            return stored
        }
    }

    /// A received blob as it is on disk inside the write transaction that indexes it, written again if it
    /// is gone.
    ///
    /// ``BlobStore/write(_:digest:encoding:spooledFile:)`` may have found the file of a writer that failed
    /// since and removed it (`removeUnindexed`, which runs in a write transaction too, so inside this one the
    /// file stays as it is seen here): indexing it as found would leave a row pointing at no file.
    func restoreIfRemoved(
        _ found: StoredBlob, bytes: UnsafeRawBufferPointer, encoding: BlobEncoding, spooledFile: String
    ) throws -> StoredBlob {
        guard !found.created, blobs.storedSize(of: found.digest) == nil else { return found }
        return try blobs.write(bytes, digest: found.digest, encoding: encoding, spooledFile: spooledFile)
    }

    /// The base the repository's latest adapter push was checked against, if any: what an adapter push
    /// without an explicit base uses.
    public func recordedBase(ofRepository repository: String) throws -> Digest? {
        try index.database.read { db in
            try Digest.fetchOne(
                db,
                sql: """
                    SELECT adapter.base_digest FROM tag JOIN adapter ON adapter.manifest_digest = tag.manifest_digest
                    WHERE tag.repository = ? ORDER BY tag.updated_at DESC LIMIT 1
                    """,
                arguments: [repository])
        }
    }

    /// Records a base or adapter manifest sent by a client, whose blobs it uploaded before, and tags it.
    ///
    /// `json` must be the manifest's canonical JSON (its digest is the SHA-256 of these bytes). The server
    /// checks what it cannot take on trust: the form of the manifest, file names that stay inside a model
    /// folder, tensor sizes against dtype and shape, that every referenced blob is indexed with the size the
    /// manifest says, and for an adapter its base and every key and shape against that base. Either
    /// everything is recorded in one transaction or nothing is.
    ///
    /// A pusher limited to some repositories (`visibility` short of ``RepositoryVisibility/all``) may name
    /// only blobs it can read or uploaded for the repository; others count as missing.
    @discardableResult
    public func receiveManifest(
        _ json: Data, tag reference: Reference, visibleTo visibility: RepositoryVisibility = .all
    ) throws -> PushResult {
        guard let repository = reference.repository, let tag = reference.tag else {
            throw StoreError.invalidInput(path: reference.description, reason: "push to a tag (NAME[:TAG]), not a digest")
        }
        let manifest: Manifest
        do {
            manifest = try Manifest(json: json)
        } catch let error as DecodingError {
            throw ReceiveError.invalidManifest("not a lorastore manifest: \(error.explanation)")
        }
        guard try manifest.canonicalJSON() == json else {
            throw ReceiveError.invalidManifest("not in canonical form (sorted keys, no whitespace, unescaped slashes)")
        }
        guard manifest.schemaVersion == Manifest.currentSchemaVersion else {
            throw ReceiveError.invalidManifest("schema version \(manifest.schemaVersion) is not \(Manifest.currentSchemaVersion)")
        }
        guard manifest.kind != .build, manifest.recipe == nil else {
            throw ReceiveError.invalidManifest("builds are created with a build request, not pushed")
        }
        for name in manifest.tensorFiles + manifest.files.map(\.path) + Array(manifest.fileMetadata.keys)
        where !ReceiveError.isSafeFileName(name) {
            throw ReceiveError.unsafeName(name)
        }
        // A tensor file's tensors are listed together, and no name is both a tensor file and a small file:
        // a model folder could not hold two files of one name.
        var fileNames = Set<String>()
        for name in manifest.tensorFiles + manifest.files.map(\.path) where !fileNames.insert(name).inserted {
            throw ReceiveError.invalidManifest("the file \"\(name)\" is listed twice")
        }
        let tensorRuns = zip(manifest.tensors, manifest.tensors.dropFirst()).filter { $0.file != $1.file }.count + 1
        guard manifest.tensors.isEmpty || tensorRuns == manifest.tensorFiles.count else {
            throw ReceiveError.invalidManifest("the tensors of a file must be listed together")
        }
        for tensor in manifest.tensors {
            let size = try? TensorInfo.byteCount(dtype: tensor.dtype, shape: tensor.shape, file: "", tensor: tensor.name)
            guard size == tensor.size else {
                throw ReceiveError.invalidManifest("tensor \"\(tensor.name)\": \(tensor.size) bytes do not fit \(tensor.dtype) \(tensor.shape)")
            }
        }
        _ = try ModelLayout(manifest: manifest)
        if manifest.kind == .base, manifest.base != nil {
            throw ReceiveError.invalidManifest("a base names no base")
        }
        if manifest.quantization != nil, manifest.kind != .base {
            throw ReceiveError.invalidManifest("only a base is quantized")
        }
        if let problem = manifest.quantizationProblem() {
            throw ReceiveError.invalidManifest(problem)
        }
        let digest = Digest(of: json)
        let adapter = try manifest.kind == .adapter ? receivedAdapterRecord(manifest, visibleTo: visibility) : nil
        return try withMaintenanceLock(.shared) {
            let entries = manifest.tensors.map { ("tensor \"\($0.name)\"", $0.digest, $0.size) }
                + manifest.files.map { ("file \"\($0.path)\"", $0.digest, $0.size) }
            // Checked in the transaction that records the manifest: a cache eviction (which removes rows in a
            // write transaction) cannot take a blob between the check and the rows that reference it.
            let previous = try index.database.write { db in
                var missing: Set<Digest> = []
                for (name, digest, size) in entries {
                    // A blob the pusher may not name is missing, whatever its size, so sizes cannot be probed.
                    guard let stored = try Int.fetchOne(db, sql: "SELECT logical_size FROM blob WHERE digest = ?", arguments: [digest]),
                          try isAvailable(digest, to: repository, visibleTo: visibility, in: db)
                    else {
                        missing.insert(digest)
                        continue
                    }
                    guard stored == size else {
                        throw ReceiveError.invalidManifest("\(name) is \(size) bytes, but its blob \(digest) holds \(stored)")
                    }
                }
                guard missing.isEmpty else { throw ReceiveError.missingBlobs(missing.sorted()) }
                return try record(
                    PreparedPush(manifest: manifest, blobs: [:], adapter: adapter), digest: digest, json: json,
                    repository: repository, tag: tag, in: db)
            }
            return PushResult(
                reference: "\(repository):\(tag)", digest: digest, kind: manifest.kind, previousDigest: previous.tagged,
                tensorCount: manifest.tensors.count, fileCount: manifest.files.count, logicalBytes: manifest.logicalSize,
                newBlobs: 0, newLogicalBytes: 0, newStoredBytes: 0, reusedBytes: manifest.logicalSize,
                manifestExisted: previous.manifestExisted, skippedFiles: [])
        }
    }

    /// Checks a received adapter manifest against its base, as a local push does, and describes it. A base the
    /// pusher cannot read is not found, exactly as a base the store lacks, so that pushes cannot probe other
    /// namespaces.
    private func receivedAdapterRecord(_ manifest: Manifest, visibleTo visibility: RepositoryVisibility) throws -> AdapterRecord {
        guard let baseDigest = manifest.base else { throw ReceiveError.invalidManifest("an adapter names its base") }
        let base = try index.database.read { db in
            guard let base = try self.manifest(baseDigest, in: db), try isVisible(manifest: baseDigest, to: visibility, in: db)
            else { throw StoreError.notFound(baseDigest.description) }
            return base
        }
        guard base.kind == .base else {
            throw StoreError.wrongKind(reference: baseDigest.description, expected: .base, found: base.kind)
        }
        guard let configEntry = manifest.files.first(where: { $0.path == PushSource.adapterConfigName }),
            let weights = manifest.tensorFiles.first, manifest.tensorFiles == [PushSource.adapterWeightsName]
        else {
            throw ReceiveError.invalidManifest(
                "an adapter has \(PushSource.adapterConfigName) and its tensors in \(PushSource.adapterWeightsName)")
        }
        guard let codec = try blobInfo(configEntry.digest)?.codec else { throw ReceiveError.missingBlobs([configEntry.digest]) }
        let configBytes = try blobs.read(configEntry.digest, codec: codec, verify: true)
        let config = try AdapterConfig(json: Data(configBytes.bytes), file: PushSource.adapterConfigName)
        let layout = try AdapterLayout(
            file: weights, tensors: manifest.tensors.map { ($0.name, .init(dtype: $0.dtype, shape: $0.shape)) },
            config: config, base: base.manifest, baseModelType: modelType(of: base.manifest))
        let dtypes = Dictionary(manifest.tensors.map { ($0.name, $0.dtype) }, uniquingKeysWith: { first, _ in first })
        let factorTypes = layout.modules.compactMap { dtypes[$0.keyA] }
        return AdapterRecord(
            config: config, layout: layout, dtype: factorTypes.first ?? manifest.tensors.first?.dtype ?? .f32, base: baseDigest)
    }
}
