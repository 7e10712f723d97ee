import Foundation
import GRDB

extension Store {
    /// Reads and validates everything a push needs, hashing every tensor and file, and adds nothing to the
    /// store; with `staging`, each new tensor's blob is staged as soon as it is hashed.
    func prepare(
        _ source: PushSource, repository: String, options: PushOptions, staging: EarlyStaging? = nil
    ) throws -> PreparedPush {
        try options.checkBase(forPushOf: source.kind, at: source.folder.path)
        let base = source.kind == .adapter
            ? try adapterBase(repository: repository, explicit: options.base, adapter: source.folder.path) : nil
        return try Self.prepare(
            source, base: base, baseModelType: base.flatMap { modelType(of: $0.manifest) }, policy: try codecPolicy(),
            progress: options.progress, staging: staging)
    }

    /// Tensor bytes from which a push hashes its tensors on several threads.
    static let parallelHashingThreshold = 1 << 20

    /// Reads and validates a push against `base` (required for an adapter), without a store: the same checks
    /// and hashing whether the push goes into a local store or to a registry server. `baseModelType` (the
    /// base's `config.json` `model_type`, when the caller can read it) tells which modules store `[in, out]`.
    /// `staging` receives each tensor once it is checked and hashed.
    static func prepare(
        _ source: PushSource, base: StoredManifest?, baseModelType: String? = nil, policy: CodecPolicy,
        progress: ProgressHandler?, staging: EarlyStaging? = nil
    ) throws -> PreparedPush {
        var tensorFiles = source.tensorFiles
        var skipped = source.skipped
        var shardIndex: ShardIndex?
        var unlistedShards: [String] = []
        if let indexURL = source.shardIndex {
            let parsed = try ShardIndex(contentsOf: indexURL)
            guard !parsed.weightMap.isEmpty else {
                throw StoreError.invalidInput(path: indexURL.path, reason: "weight_map lists no tensors")
            }
            for shard in parsed.shardFiles where !ReceiveError.isSafeFileName(shard) {
                throw StoreError.invalidInput(
                    path: indexURL.path,
                    reason: "weight_map puts tensors in \"\(shard)\", a hidden file name, which a pushed model may not hold")
            }
            let listed = Set(parsed.weightMap.values)
            unlistedShards = tensorFiles.map(\.lastPathComponent).filter { !listed.contains($0) }
            skipped += unlistedShards.map { "\($0) (not in \(PushSource.shardIndexName))" }
            tensorFiles = parsed.shardFiles.map { source.folder.appending(path: $0) }
            shardIndex = parsed
        } else if source.kind == .base && tensorFiles.count > 1 {
            throw StoreError.invalidInput(
                path: source.folder.path,
                reason: "\(tensorFiles.count) .safetensors files and no \(PushSource.shardIndexName) to say how they form one model")
        }
        for file in tensorFiles where !FileManager.default.fileExists(atPath: file.path) {
            throw StoreError.invalidInput(path: file.path, reason: "listed in \(PushSource.shardIndexName) but missing")
        }
        let files = try tensorFiles.map { try SafetensorsFile(contentsOf: $0) }

        var located: [(file: SafetensorsFile, info: TensorInfo)] = []
        var seen: [String: String] = [:]
        for file in files {
            let name = file.url.lastPathComponent
            for info in file.tensors {
                if let other = seen[info.name] {
                    throw StoreError.invalidInput(path: file.url.path, reason: "tensor \"\(info.name)\" is also in \(other)")
                }
                seen[info.name] = name
                located.append((file, info))
            }
        }
        guard !located.isEmpty else {
            throw StoreError.invalidInput(path: tensorFiles.first?.path ?? source.folder.path, reason: "holds no tensors")
        }
        if source.kind == .base, let config = source.smallFiles.first(where: { $0.lastPathComponent == Self.modelConfigPath }) {
            // Hugging Face loads a model by its configuration: a base whose config.json does not parse cannot
            // be loaded, nor its model type read.
            let bytes = try Data(contentsOf: config)
            do {
                guard case .object = try bytes.withUnsafeBytes({ try OrderedJSON.parse($0) }) else {
                    throw StoreError.invalidInput(path: config.path, reason: "is not a JSON object, as a model's configuration is")
                }
            } catch let error as OrderedJSON.SyntaxError {
                throw StoreError.invalidInput(path: config.path, reason: "is not valid JSON: \(error)")
            }
        }
        if let shardIndex {
            for (tensor, file) in shardIndex.weightMap where seen[tensor] != file {
                throw StoreError.invalidInput(
                    path: source.shardIndex?.path ?? PushSource.shardIndexName,
                    reason: seen[tensor].map { "weight_map puts \"\(tensor)\" in \(file), but it is in \($0)" }
                        ?? "weight_map lists \"\(tensor)\", which no shard holds")
            }
            for (tensor, file) in seen where shardIndex.weightMap[tensor] == nil {
                throw StoreError.invalidInput(
                    path: source.shardIndex?.path ?? PushSource.shardIndexName,
                    reason: "weight_map does not list \"\(tensor)\" (in \(file))")
            }
            // Other safetensors files beside the index are normal (a consolidated copy of the same weights);
            // with a total size that disagrees, the index more likely leaves out shards of this model.
            let listedBytes = located.reduce(0) { $0 + $1.info.byteCount }
            if !unlistedShards.isEmpty, listedBytes != shardIndex.totalSize {
                throw StoreError.invalidInput(
                    path: source.shardIndex?.path ?? PushSource.shardIndexName,
                    reason: "metadata.total_size is \(shardIndex.totalSize) bytes but the shards weight_map lists hold \(listedBytes), "
                        + "and \(unlistedShards.joined(separator: ", ")) in the folder is not listed: is the index incomplete?")
            }
        }

        var adapter: AdapterRecord?
        var baseDigest: Digest?
        if source.kind == .adapter, let weights = files.first {
            let configURL = source.folder.appending(path: PushSource.adapterConfigName)
            let config = try AdapterConfig(json: try Data(contentsOf: configURL), file: configURL.path)
            guard let base else { throw StoreError.baseRequired(adapter: source.folder.path) }
            let layout = try AdapterLayout(
                file: weights.url.path,
                tensors: weights.tensors.map { ($0.name, .init(dtype: $0.dtype, shape: $0.shape)) },
                config: config,
                base: base.manifest,
                baseModelType: baseModelType)
            let factorTypes = layout.modules.compactMap { module in weights[name: module.keyA]?.dtype }
            skipped += layout.untargetedModules.map {
                "\($0) (its factors are in the file but adapter_config.json does not target it; PEFT ignores them)"
            }
            skipped += layout.ignoredMagnitudes.map {
                "\($0) (a DoRA magnitude, but adapter_config.json has use_dora false; PEFT ignores it)"
            }
            skipped += layout.wrapperCopies.map {
                "\($0) (a copy inside PEFT's modules_to_save wrapper, saved by bias=\"all\"; loading does not use it)"
            }
            adapter = AdapterRecord(
                config: config, layout: layout, dtype: factorTypes.first ?? weights.tensors.first?.dtype ?? .f32,
                base: base.digest)
            baseDigest = base.digest
        }

        let totalBytes = located.reduce(0) { $0 + $1.info.byteCount }
        let hashed = ProgressCounter(phase: "hashing", total: totalBytes, handler: progress)
        let hash = { (file: SafetensorsFile, info: TensorInfo) throws -> Digest in
            let bytes = file.bytes(of: info)
            guard FiniteCheck.allFinite(bytes, dtype: info.dtype) else {
                staging?.stop()
                throw StoreError.nonFinite(file: file.url.path, tensor: info.name)
            }
            let digest = Digest(of: bytes)
            try staging?.stage(
                bytes, digest: digest, encoding: policy.encoding(for: source.kind, dtype: info.dtype),
                origin: "tensor \"\(info.name)\" of \(file.url.path)")
            hashed.add(info.byteCount)
            return digest
        }
        // Threads pay off for megabytes, not for the few kilobytes of a small adapter (whose batch pushes
        // already validate items in parallel).
        let digests = totalBytes >= Self.parallelHashingThreshold
            ? try located.parallelMap(hash) : try located.map(hash)

        var blobs: [Digest: PendingBlob] = [:]
        var tensors: [TensorEntry] = []
        for ((file, info), digest) in zip(located, digests) {
            tensors.append(
                TensorEntry(
                    name: info.name, dtype: info.dtype, shape: info.shape, digest: digest, size: info.byteCount,
                    file: file.url.lastPathComponent))
            blobs[digest] = PendingBlob(
                source: .tensor(file, info), encoding: policy.encoding(for: source.kind, dtype: info.dtype))
        }
        var fileEntries: [FileEntry] = []
        for url in source.smallFiles {
            let data = try Data(contentsOf: url)
            let digest = Digest(of: data)
            fileEntries.append(FileEntry(path: url.lastPathComponent, digest: digest, size: data.count))
            blobs[digest] = PendingBlob(source: .file(data, name: url.path), encoding: CodecPolicy.fileEncoding)
        }
        var fileMetadata: [String: [String: String]] = [:]
        for file in files {
            var metadata = file.metadata ?? [:]
            metadata["format"] = nil
            if !metadata.isEmpty { fileMetadata[file.url.lastPathComponent] = metadata }
        }
        var manifest = Manifest(
            kind: source.kind, tensors: tensors, files: fileEntries, base: baseDigest, fileMetadata: fileMetadata)
        if source.kind == .base {
            manifest.quantization = try Manifest.recordedQuantization(in: fileMetadata)
            if let problem = manifest.quantizationProblem() {
                throw StoreError.invalidInput(path: source.folder.path, reason: problem)
            }
        }
        return PreparedPush(manifest: manifest, blobs: blobs, adapter: adapter, skipped: skipped, tensorFiles: files)
    }

    /// The base an adapter is checked against: the one given, else the one the repository's latest push used.
    private func adapterBase(repository: String, explicit: Reference?, adapter: String) throws -> StoredManifest {
        try index.database.read { db in
            if let explicit {
                return try resolve(explicit, as: .base, in: db)
            }
            guard let base = try recordedBase(ofRepository: repository, in: db) else {
                throw StoreError.baseRequired(adapter: adapter)
            }
            return base
        }
    }

    /// The base the repository's latest adapter push was checked against, if any.
    func recordedBase(ofRepository repository: String, in db: Database) throws -> StoredManifest? {
        let recorded = try Digest.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT adapter.base_digest FROM tag JOIN adapter ON adapter.manifest_digest = tag.manifest_digest
                    WHERE tag.repository = ? ORDER BY tag.updated_at DESC LIMIT 1
                    """),
            arguments: [repository])
        return try recorded.flatMap { try manifest($0, in: db) }
    }
}
