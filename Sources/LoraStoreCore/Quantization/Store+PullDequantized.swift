import Foundation

extension Store {
    /// Writes a quantized base with its quantized weights dequantized to `dtype` (F32, F16 or BF16): the
    /// model as a runtime without quantized kernels reads it, in the base's own files, every other tensor
    /// as stored. Each weight is dequantized as ``Quantizer/dequantize(_:)`` defines, then rounded once to
    /// `dtype`; the `.scale` tensors and the quantization metadata are left out. A weight with values beyond
    /// `dtype`'s range is refused, naming it.
    func pullDequantized(
        _ stored: StoredManifest, named text: String, as dtype: DType, to destination: URL, progress: ProgressHandler?
    ) throws -> PullResult {
        guard dtype.isMergeable else {
            throw StoreError.invalidInput(path: dtype.rawValue, reason: "dequantize to F32, F16 or BF16")
        }
        let manifest = stored.manifest
        guard stored.kind == .base, let quantization = manifest.quantization else {
            let reason = switch stored.kind {
            case .build: "is a build; dequantizing writes a quantized base's weights as floats (a build on a quantized base is made float with --policy dequantize)"
            case .adapter: "is an adapter; dequantizing writes a quantized base's weights as floats"
            case .base: "is not a quantized base; there is nothing to dequantize"
            }
            throw StoreError.invalidInput(path: text, reason: reason)
        }
        let byName = Dictionary(manifest.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let companions = Set(quantization.values.compactMap(\.scaleTensor))
        let tensors = manifest.tensors.filter { !companions.contains($0.name) }
        let output = tensors.map { tensor in
            (name: tensor.name, dtype: quantization[tensor.name] == nil ? tensor.dtype : dtype,
             shape: quantization[tensor.name]?.shape ?? tensor.shape)
        }
        var files: [ModelLayout.File] = []
        for tensor in tensors where files.last?.name != tensor.file {
            var metadata = manifest.fileMetadata[tensor.file] ?? [:]
            metadata[BaseQuantization.metadataKey] = nil
            metadata["format"] = "pt"
            let group = zip(tensors, output).filter { $0.0.file == tensor.file }.map(\.1)
            files.append(.init(name: tensor.file, header: try SafetensorsHeader(tensors: group, metadata: metadata, label: tensor.file)))
        }
        let sizes = output.map { $0.dtype.byteCount(elementCount: $0.shape.reduce(1, *)) ?? 0 }
        let shardIndex = manifest.files.contains { $0.path == ShardIndex.fileName }
            ? try ShardIndex(
                totalSize: sizes.reduce(0, +), totalParameters: output.reduce(0) { $0 + $1.shape.reduce(1, *) },
                weightMap: Dictionary(tensors.map { ($0.name, $0.file) }, uniquingKeysWith: { first, _ in first }))
            : nil
        let writer = try ModelFolderWriter(destination: destination, layout: ModelLayout(files: files, shardIndex: shardIndex))
        try copyFiles(of: manifest, into: writer)
        let codecs = try index.database.read { db in try self.codecs(of: manifest.blobDigests, in: db) }
        func read<T>(_ entry: TensorEntry, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
            guard let codec = codecs[entry.digest] else { throw BlobStoreError.missing(entry.digest) }
            let contents = try blobs.read(entry.digest, codec: codec, size: entry.size)
            return try withExtendedLifetime(contents) { try body(contents.bytes) }
        }
        let counter = ProgressCounter(phase: "writing", total: sizes.reduce(0, +), handler: progress)
        for ((tensor, entry), size) in zip(zip(tensors, output), sizes) {
            guard let weight = quantization[tensor.name] else {
                try read(tensor) { try writer.append($0) }
                counter.add(size)
                continue
            }
            var scales: [UInt8] = []
            if let name = weight.scaleTensor {
                guard let scale = byName[name] else { throw StoreError.notFound("\(tensor.name)'s scales \(name)") }
                scales = try read(scale) { Array($0) }
            }
            let data = try read(tensor) { Array($0) }
            let quantized: QuantizedTensor
            do {
                quantized = try QuantizedTensor(
                    scheme: weight.scheme, rows: weight.rows, columns: weight.columns, data: data, scales: scales)
            } catch {
                throw BlobStoreError.damaged(tensor.digest, reason: "\(tensor.name): \(error)")
            }
            let values = Quantizer.dequantize(quantized)
            var bytes = [UInt8](repeating: 0, count: size)
            try values.withUnsafeBytes { source in
                try bytes.withUnsafeMutableBytes { target in
                    guard let from = source.baseAddress, let to = target.baseAddress else { return }
                    try FloatConversion.convert(from, from: .f32, to: to, as: entry.dtype, count: values.count)
                }
            }
            try bytes.withUnsafeBytes { bytes in
                guard FiniteCheck.allFinite(bytes, dtype: entry.dtype) else {
                    throw StoreError.invalidInput(
                        path: tensor.name,
                        reason: "dequantized to \(entry.dtype.rawValue), it has values beyond that type's range (infinite or NaN); dequantize to F32")
                }
                try writer.append(bytes)
            }
            counter.add(size)
        }
        try writer.finish()
        return PullResult(
            digest: stored.digest, kind: .base, destination: destination.path, files: [:], bytes: writer.bytesWritten,
            merged: false, rebuilt: false, evicted: [])
    }
}
