import Foundation

extension Store {
    /// Merges `adapters` (with weights) into `base` and writes a Hugging Face model folder to `destination`:
    /// the base's small files (config, tokenizer...), the merged tensors in safetensors with provenance in
    /// `__metadata__`, and a shard index when sharded. On a quantized base the options' policy applies
    /// (``QuantizedBuildPolicy``); the adapter-loss limit is measured and enforced as for a build, before the
    /// folder is moved into place. Adapters pushed against another model than `base` are refused unless
    /// `allowingOtherBase` (``checkAdapterBases(_:base:visibleTo:in:)``), once they were found to fit it.
    @discardableResult
    public func merge(
        base: Reference, adapters: [(reference: Reference, weight: Double)], options: MergeOptions = MergeOptions(),
        allowingOtherBase: Bool = false, to destination: URL, progress: ProgressHandler? = nil
    ) throws -> MergeResult {
        let (baseManifest, selections) = try index.database.read { db in
            let base = try resolve(base, as: .base, in: db)
            let selections = try adapters.map { adapter in
                WeightedAdapter(digest: try resolve(adapter.reference, as: .adapter, in: db).digest, weight: adapter.weight)
            }
            return (base, selections)
        }
        let plan = try MergePlan(base: baseManifest, adapters: selections, options: options, store: self)
        if !allowingOtherBase {
            try index.database.read { db in try checkAdapterBases(selections.map(\.digest), base: baseManifest, in: db) }
        }
        let writer = try ModelFolderWriter(
            destination: destination, layout: try plan.layout(provenance: ["lorastore.version": LoraStoreVersion.current]),
            computeDigests: true)
        try copyFiles(of: baseManifest.manifest, into: writer, outputType: options.outputType)
        let counter = ProgressCounter(phase: "merging", total: plan.outputBytes, handler: progress)
        let limit = options.effectiveMaxAdapterLoss
        let measured = try MergeEngine(plan: plan, store: self).run(measuring: limit != nil) { tensor, bytes in
            try writer.append(bytes)
            counter.add(bytes.count)
        }
        try Self.checkAdapterLoss(
            BuildReport.adapterLoss(of: measured, options: options), options: options,
            scheme: baseManifest.manifest.quantization?.values.first?.scheme)
        try writer.finish { try writeSeparateAdapters(of: plan.recipe, into: $0) }
        return MergeResult(
            destination: destination.path, base: baseManifest.digest, adapters: selections,
            tensorCount: plan.tensors.count, changedTensors: plan.tensors.filter(\.isChanged).count,
            tensorBytes: plan.outputBytes, files: writer.fileDigests)
    }

    /// Copies a manifest's small files into a model folder; a base's shard index is left out unless asked
    /// for, since a merged model has its own. With `outputType` (a merge's `--dtype`), `config.json` names
    /// that type (``ModelConfig/settingDType(of:to:)``).
    func copyFiles(
        of manifest: Manifest, into writer: ModelFolderWriter, includingShardIndex: Bool = false, outputType: DType? = nil
    ) throws {
        let codecs = try self.index.database.read { db in try self.codecs(of: manifest.files.map(\.digest), in: db) }
        for file in manifest.files where includingShardIndex || file.path != ShardIndex.fileName {
            let codec = codecs[file.digest] ?? .raw
            if file.path == Self.modelConfigPath, let outputType,
               let edited = try modelConfig(file.digest, codec: codec, namingType: outputType) {
                try edited.withUnsafeBytes { try writer.addFile(file.path, contents: $0) }
                continue
            }
            let contents = try blobs.read(file.digest, codec: codec)
            try writer.addFile(file.path, contents: contents.bytes)
        }
    }

    /// The `config.json` stored as blob `digest`, edited to name `type` (``ModelConfig/settingDType(of:to:)``);
    /// nil when the stored one needs no edit. What a merged model of that type holds, pulled or served.
    func modelConfig(_ digest: Digest, codec: BlobCodec, namingType type: DType) throws -> Data? {
        let contents = try blobs.read(digest, codec: codec)
        return withExtendedLifetime(contents) { ModelConfig.settingDType(of: Data(contents.bytes), to: type) }
    }
}
