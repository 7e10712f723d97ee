import Foundation

/// Turns a float base manifest into a quantized one: the selected weights replaced by their stored
/// quantized tensors (``QuantizationScheme`` layout), every other tensor and file kept with its blob.
///
/// Which weights: the names given, each of which must be a 2-D F32, F16 or BF16 tensor whose row length the
/// scheme accepts (else the request is refused, naming the tensor); or by default every 2-D float
/// projection weight (`*_proj.weight`), skipping with a note those whose row length the scheme cannot
/// store (e.g. a `down_proj` of 172 columns for `q8_0`). Embeddings, norms and the head stay as they are.
struct BaseQuantization {
    /// The quantized manifest.
    let manifest: Manifest
    /// The blobs the quantized manifest adds (quantized tensors, scales, a rewritten shard index).
    let blobs: [Digest: PendingBlob]
    /// What was quantized and what was kept.
    let summary: QuantizationSummary

    /// The metadata key listing a file's quantized weights (JSON of name → ``QuantizedWeight``).
    static let metadataKey = "lorastore.quantization"

    /// Quantizes `base`'s selected weights in `scheme`, reading each weight's values through `values`.
    /// - Throws: ``QuantizationError/tensorRefused(tensor:reason:)`` for a named tensor that cannot be
    ///   quantized or a weight holding NaN or infinity; when the base is already quantized or no weight
    ///   qualifies.
    init(
        base: Manifest, scheme: QuantizationScheme, tensors explicit: [String]?, policy: CodecPolicy,
        progress: ProgressHandler?, values: (TensorEntry) throws -> [Float]
    ) throws {
        guard base.kind == .base, base.quantization == nil else {
            throw QuantizationError.tensorRefused(tensor: "this model", reason: "it is already quantized; quantize its float original")
        }
        let names = Set(base.tensors.map(\.name))
        var selected = Set<String>()
        var kept: [String] = []
        if let explicit {
            for name in explicit {
                guard let entry = base.tensors.first(where: { $0.name == name }) else {
                    throw QuantizationError.tensorRefused(tensor: name, reason: "the base has no such tensor")
                }
                if let reason = Self.refusal(entry, scheme: scheme) {
                    throw QuantizationError.tensorRefused(tensor: name, reason: reason)
                }
                selected.insert(name)
            }
        } else {
            for entry in base.tensors where entry.shape.count == 2 && entry.dtype.isMergeable && entry.name.hasSuffix("_proj.weight") {
                if let reason = Self.refusal(entry, scheme: scheme) {
                    kept.append("\(entry.name): \(reason), kept \(entry.dtype.rawValue)")
                } else {
                    selected.insert(entry.name)
                }
            }
        }
        guard !selected.isEmpty else {
            throw QuantizationError.tensorRefused(tensor: "this model", reason: "no 2-D projection weight that \(scheme.rawValue) can store")
        }
        for name in selected where scheme == .int8Row && names.contains(name + QuantizationScheme.scaleSuffix) {
            throw QuantizationError.tensorRefused(
                tensor: name, reason: "the base already has a tensor \(name + QuantizationScheme.scaleSuffix), where its scales would go")
        }

        let counter = ProgressCounter(
            phase: "quantizing", total: base.tensors.filter { selected.contains($0.name) }.reduce(0) { $0 + $1.size },
            handler: progress)
        var tensors: [TensorEntry] = []
        var blobs: [Digest: PendingBlob] = [:]
        var weights: [String: QuantizedWeight] = [:]
        var quantized: [String] = []
        for entry in base.tensors {
            guard selected.contains(entry.name) else {
                tensors.append(entry)
                continue
            }
            let rows = entry.shape[0]
            let columns = entry.shape[1]
            let tensor: QuantizedTensor
            do {
                tensor = try values(entry).withUnsafeBufferPointer { values throws(QuantizationError) in
                    try Quantizer.quantize(values, rows: rows, columns: columns, scheme: scheme)
                }
            } catch let error as QuantizationError {
                throw QuantizationError.tensorRefused(tensor: entry.name, reason: error.description)
            }
            var stored = [(entry.name, scheme.storedDType, scheme.storedShape(rows: rows, columns: columns) ?? [], tensor.data)]
            if let scaleShape = scheme.scaleShape(rows: rows) {
                stored.append((entry.name + QuantizationScheme.scaleSuffix, .f32, scaleShape, tensor.scales))
            }
            for (name, dtype, shape, bytes) in stored {
                let data = Data(bytes)
                let digest = Digest(of: data)
                tensors.append(TensorEntry(name: name, dtype: dtype, shape: shape, digest: digest, size: data.count, file: entry.file))
                blobs[digest] = PendingBlob(
                    source: .file(data, name: "quantized tensor \"\(name)\""), encoding: policy.encoding(for: .base, dtype: dtype))
            }
            weights[entry.name] = QuantizedWeight(
                scheme: scheme, dtype: entry.dtype, shape: entry.shape,
                scaleTensor: scheme == .int8Row ? entry.name + QuantizationScheme.scaleSuffix : nil)
            quantized.append(entry.name)
            counter.add(entry.size)
        }

        var fileMetadata = base.fileMetadata
        let fileOfTensor = Dictionary(tensors.map { ($0.name, $0.file) }, uniquingKeysWith: { first, _ in first })
        for file in Set(tensors.map(\.file)) {
            let inFile = weights.filter { name, _ in fileOfTensor[name] == file }
            guard !inFile.isEmpty else { continue }
            fileMetadata[file, default: [:]][Self.metadataKey] = String(decoding: try CanonicalJSON.encode(inFile), as: UTF8.self)
        }
        var files = base.files
        if let position = files.firstIndex(where: { $0.path == ShardIndex.fileName }) {
            let index = try ShardIndex(
                totalSize: tensors.reduce(0) { $0 + $1.size },
                totalParameters: base.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) },
                weightMap: fileOfTensor)
            let data = index.encoded()
            let digest = Digest(of: data)
            files[position] = FileEntry(path: ShardIndex.fileName, digest: digest, size: data.count)
            blobs[digest] = PendingBlob(source: .file(data, name: ShardIndex.fileName), encoding: CodecPolicy.fileEncoding)
        }
        manifest = Manifest(
            kind: .base, tensors: tensors, files: files, fileMetadata: fileMetadata, quantization: weights)
        self.blobs = blobs
        summary = QuantizationSummary(scheme: scheme, quantized: quantized, kept: kept)
    }

    /// Why `entry` cannot be quantized in `scheme`, or nil when it can.
    private static func refusal(_ entry: TensorEntry, scheme: QuantizationScheme) -> String? {
        guard entry.shape.count == 2 else { return "only 2-D weights are quantized; it has shape \(entry.shape)" }
        guard entry.dtype.isMergeable else { return "it is \(entry.dtype.rawValue), not F32, F16 or BF16" }
        guard scheme.accepts(columns: entry.shape[1]) else {
            return "its rows of \(entry.shape[1]) values are not a multiple of the \(scheme.blockSize ?? 1)-value blocks of \(scheme.rawValue)"
        }
        return nil
    }
}
