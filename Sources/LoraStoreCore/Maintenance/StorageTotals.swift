import GRDB

/// The totals behind ``StorageStats``, before the entries and store-wide figures join them: what bases and
/// adapters take as files and as distinct blobs, and what builds take as full merged models and as the
/// materialized blobs only builds hold.
struct StorageTotals {
    /// Every base and adapter as its files.
    var modelLogical: Int
    /// The distinct blobs of bases and adapters: logical and on-disk bytes.
    var distinctLogical: Int
    var distinctStored: Int
    /// One full merged model per build.
    var buildLogical: Int
    /// On disk: blobs of materialized builds that no base or adapter counted here holds.
    var buildStored: Int

    init(modelLogical: Int, distinctLogical: Int, distinctStored: Int, buildLogical: Int, buildStored: Int) {
        self.modelLogical = modelLogical
        self.distinctLogical = distinctLogical
        self.distinctStored = distinctStored
        self.buildLogical = buildLogical
        self.buildStored = buildStored
    }

    /// The totals of `manifests` alone, as if they were the whole store: their distinct blobs counted once,
    /// a build's materialized blobs only when none of the bases and adapters among them holds the same.
    init(of manifests: [(digest: Digest, kind: ManifestKind, logicalSize: Int)], in db: Database) throws {
        var modelBlobs: [Digest: (logical: Int, stored: Int)] = [:]
        var buildBlobs: [Digest: Int] = [:]
        var modelLogical = 0
        var buildLogical = 0
        for manifest in manifests {
            if manifest.kind == .build {
                buildLogical += manifest.logicalSize
                let rows = try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT blob.digest, blob.stored_size FROM build_blob JOIN blob ON blob.digest = build_blob.blob_digest
                            WHERE build_blob.build_digest = ?
                            """),
                    arguments: [manifest.digest])
                while let row = try rows.next() { buildBlobs[row[0]] = row[1] }
            } else {
                modelLogical += manifest.logicalSize
                let rows = try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT blob.digest, blob.logical_size, blob.stored_size
                            FROM manifest_blob JOIN blob ON blob.digest = manifest_blob.blob_digest
                            WHERE manifest_blob.manifest_digest = ?
                            """),
                    arguments: [manifest.digest])
                while let row = try rows.next() { modelBlobs[row[0]] = (row[1], row[2]) }
            }
        }
        self.init(
            modelLogical: modelLogical, distinctLogical: modelBlobs.values.reduce(0) { $0 + $1.logical },
            distinctStored: modelBlobs.values.reduce(0) { $0 + $1.stored }, buildLogical: buildLogical,
            buildStored: buildBlobs.filter { modelBlobs[$0.key] == nil }.values.reduce(0, +))
    }

    /// The figures of ``StorageStats`` from these totals.
    func stats(
        unreferencedBytes: Int, indexBytes: Int, untagged: (count: Int, exclusiveBytes: Int)? = nil,
        entries: [StorageStats.Entry]
    ) -> StorageStats {
        let logical = modelLogical + buildLogical
        let stored = distinctStored + buildStored
        return StorageStats(
            logicalBytes: logical, storedBytes: stored, dedupSavedBytes: modelLogical - distinctLogical,
            compressionSavedBytes: distinctLogical - distinctStored, buildSavedBytes: buildLogical - buildStored,
            fullCopiesBytes: logical, savingsRatio: stored > 0 ? Double(logical) / Double(stored) : 0,
            unreferencedBytes: unreferencedBytes, indexBytes: indexBytes, untaggedManifests: untagged?.count,
            untaggedExclusiveBytes: untagged?.exclusiveBytes, entries: entries)
    }
}
