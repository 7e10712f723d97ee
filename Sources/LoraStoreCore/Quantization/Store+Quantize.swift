import Foundation

extension Store {
    /// Stores a quantized copy of the base `base` and tags it `target`.
    ///
    /// The copy shares every blob it can with the original: only the quantized weights (and, for
    /// `int8-row`, their row scales) are new blobs, stored in the layout documented on
    /// ``QuantizationScheme``. Its manifest records each quantized weight's scheme and logical type and
    /// shape (``Manifest/quantization``), so adapters pushed against the float base fit the copy too.
    ///
    /// - Parameters:
    ///   - tensors: The weights to quantize. Each must be a 2-D F32, F16 or BF16 tensor whose row length the
    ///     scheme stores, else nothing is stored and the error names it. `nil` quantizes every 2-D float
    ///     `*_proj.weight`, keeping (and listing in ``PushResult/quantization``) those whose row length
    ///     the scheme cannot store; embeddings, norms and the head stay as they are.
    /// - Throws: ``QuantizationError/tensorRefused(tensor:reason:)`` when a weight cannot be quantized or
    ///   the base is already quantized; ``StoreError`` when `base` is not a base, or `target` is not a tag or
    ///   is one of the original's.
    @discardableResult
    public func quantize(
        _ base: Reference, scheme: QuantizationScheme, to target: Reference, tensors: [String]? = nil,
        progress: ProgressHandler? = nil
    ) throws -> PushResult {
        guard let repository = target.repository, let tag = target.tag else {
            throw StoreError.invalidInput(path: target.description, reason: "store the quantized base under a tag (NAME[:TAG]), not a digest")
        }
        try checkRepositoryKind(repository, kind: .base)
        return try withMaintenanceLock(.shared) {
            let (original, codecs) = try index.database.read { db in
                let original = try resolve(base, as: .base, in: db)
                // Tagging the copy with a tag of the original would move that tag off the float weights
                // (later adapter pushes against it, and quantizing again, would then find the copy).
                if try tags(of: original.digest, in: db).contains("\(repository):\(tag)") {
                    throw StoreError.invalidInput(
                        path: target.description,
                        reason: "names the base being quantized; tag the quantized copy otherwise (say \(repository):\(tag)-\(scheme.rawValue))")
                }
                return (original, try self.codecs(of: original.manifest.blobDigests, in: db))
            }
            let quantization = try BaseQuantization(
                base: original.manifest, scheme: scheme, tensors: tensors, policy: try codecPolicy(), progress: progress
            ) { entry in
                guard let codec = codecs[entry.digest] else { throw BlobStoreError.missing(entry.digest) }
                let contents = try blobs.read(entry.digest, codec: codec, size: entry.size)
                return try withExtendedLifetime(contents) { try FloatConversion.floats(contents.bytes, dtype: entry.dtype) }
            }
            return try store(
                PreparedPush(manifest: quantization.manifest, blobs: quantization.blobs, adapter: nil),
                repository: repository, tag: tag, skipped: [], quantization: quantization.summary, progress: progress)
        }
    }
}
