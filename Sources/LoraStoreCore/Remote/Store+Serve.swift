import Crypto
import Foundation

extension Store {
    /// What `stored` looks like as a model folder, assembled from blobs: a base or adapter in its own
    /// layout with its small files, or a materialized build (merged tensors in the recipe's layout, the
    /// base's small files and, when sharded, the build's shard index). Nil for a build that is not
    /// materialized now (see ``holdForServing(_:)``).
    ///
    /// The files are byte for byte those ``pull(_:to:options:dequantize:progress:)`` writes.
    public func servedModel(_ stored: StoredManifest) throws -> ServedModel? {
        guard stored.kind == .build else {
            let layout = try ModelLayout(manifest: stored.manifest)
            var groups: [[TensorEntry]] = []
            for tensor in stored.manifest.tensors {
                if groups.last?.last?.file != tensor.file { groups.append([]) }
                groups[groups.count - 1].append(tensor)
            }
            let tensorFiles = zip(layout.files, groups).map { file, tensors in
                ServedFile(
                    name: file.name, size: file.header.fileSize, digest: nil,
                    source: .safetensors(
                        header: file.header.encoded, tensors: tensors.map { .init(digest: $0.digest, size: $0.size) }))
            }
            return ServedModel(
                digest: stored.digest, kind: stored.kind, files: tensorFiles + smallFiles(of: stored.manifest, includingShardIndex: true))
        }
        guard let recipe = stored.manifest.recipe, let output = try materializedOutput(of: stored.digest) else { return nil }
        let base = try index.database.read { db in try existingManifest(recipe.base, in: db) }
        let layout = try output.layout(build: stored.digest, recipe: recipe)
        var files = layout.files.map { file in
            ServedFile(
                name: file.name, size: file.header.fileSize, digest: output.files.first { $0.name == file.name }?.digest,
                source: .safetensors(
                    header: file.header.encoded,
                    tensors: output.tensors.filter { $0.file == file.name }.map { .init(digest: $0.digest, size: $0.size) }))
        }
        files += try smallFiles(of: base.manifest, includingShardIndex: false).map { file in
            // As a local pull writes it: a build merged to another type names that type in its config.
            guard file.name == Self.modelConfigPath, let outputType = recipe.options.outputType, let digest = file.digest else {
                return file
            }
            let codec = try index.database.read { db in try codecs(of: [digest], in: db)[digest] } ?? .raw
            guard let edited = try modelConfig(digest, codec: codec, namingType: outputType) else { return file }
            return ServedFile(name: file.name, size: edited.count, digest: Digest(of: edited), source: .bytes(edited))
        }
        if let shardIndex = layout.shardIndex {
            let bytes = shardIndex.encoded()
            files.append(ServedFile(name: ShardIndex.fileName, size: bytes.count, digest: Digest(of: bytes), source: .bytes(bytes)))
        }
        if recipe.options.quantizedBase == .separate {
            // The adapters, as a local pull writes them: each in its own folder under adapters/.
            for (position, adapter) in recipe.adapters.enumerated() {
                let stored = try index.database.read { db in try existingManifest(adapter.digest, in: db) }
                let folder = Self.separateAdapterFolder(position: position, digest: adapter.digest)
                for var file in try servedModel(stored)?.files ?? [] {
                    file.name = folder + "/" + file.name
                    files.append(file)
                }
            }
        }
        return ServedModel(digest: stored.digest, kind: .build, files: files)
    }

    /// Materializes `build` unless it is materialized now (merging it, or rebuilding it after eviction and
    /// checking its recorded digests, as a pull would), records the pull, then holds it: eviction skips the
    /// build until the hold is released, so a server can stream its blobs. After a merge the cache budget is
    /// enforced (best effort) once the hold is taken, so a budget smaller than the build still serves it.
    /// Concurrent calls, in threads or processes, merge once. Also returns whether this call merged.
    ///
    /// - Throws: ``StoreError/evictedWhileServing(build:)`` when another process evicted the build each time
    ///   it was materialized.
    public func holdForServing(_ build: Digest) throws -> (hold: BuildHold, merged: Bool) {
        var merged = false
        // Another process may evict the build between the merge and the hold; a few tries settle that.
        for _ in 0..<3 {
            if try materializedOutput(of: build) == nil {
                let scratch = blobs.temporaryDirectory.appending(
                    path: "serve-\(build.hex).\(getpid()).\(UInt64.random(in: .min ... .max))")
                defer { try? FileManager.default.removeItem(at: scratch) }
                merged = try pull(
                    build.description, to: scratch, options: MergeOptions(), dequantize: nil, progress: nil,
                    enforcingBudget: false
                ).merged || merged
            }
            let lock = try buildLock(build)
            try lock.lock(.shared)
            if try materializedOutput(of: build) != nil {
                // A download is a pull for the cache's order (a merge here recorded one already).
                if !merged { try recordPull(of: build) }
                // The build is held, so this skips it; a failure here leaves the cache over budget until the
                // next pull, which is no reason to refuse this one.
                if merged { _ = try? enforceCacheBudget() }
                return (BuildHold(lock: lock), merged)
            }
            lock.unlock()
        }
        throw StoreError.evictedWhileServing(build: build)
    }

    /// The SHA-256 of a served file, reading it through (for tensor files of bases and adapters, whose
    /// digests are not recorded).
    ///
    /// A digest taken of the bytes on disk vouches for whatever is there, so a client's check against it
    /// would pass damaged blobs: meanwhile, on another core, each tensor blob of the file is read back
    /// against its own digest, and a damaged one fails the listing (``BlobStoreError/damaged(_:reason:)``)
    /// instead of being served.
    public func digest(of file: ServedFile) throws -> Digest {
        if let digest = file.digest { return digest }
        let (digest, _) = try concurrently {
            let reader = ServedFileReader(file, in: self)
            var hasher = SHA256()
            while let chunk = try reader.next(maximum: 4 << 20) {
                hasher.update(data: chunk)
            }
            return Digest(hasher.finalize())
        } _: {
            guard case .safetensors(_, let tensors) = file.source else { return }
            for tensor in tensors {
                guard let codec = try blobInfo(tensor.digest)?.codec else { throw BlobStoreError.missing(tensor.digest) }
                _ = try blobs.read(tensor.digest, codec: codec, size: tensor.size, verify: true)
            }
        }
        return digest
    }

    private func smallFiles(of manifest: Manifest, includingShardIndex: Bool) -> [ServedFile] {
        manifest.files.filter { includingShardIndex || $0.path != ShardIndex.fileName }.map {
            ServedFile(name: $0.path, size: $0.size, digest: $0.digest, source: .blob($0.digest))
        }
    }
}
