import GRDB

extension Store {
    /// Tensors held in two floating-point types whose values ``checkAdapterBases(_:base:visibleTo:in:)``
    /// compares, the smallest first (norms and biases, a few KiB each): enough to tell a cast copy from
    /// another model, while reading next to nothing.
    static let castTensorSample = 16

    /// Refuses to merge an adapter into a base other than the model it was pushed against
    /// (``StoreError/adapterForOtherBase(adapter:pushedFor:base:equalTensors:tensors:)``), unless the two
    /// bases hold one model: the same tensors in another shard layout or with other files, a quantized copy,
    /// or a copy cast to other floating-point types (``BaseComparison``; for a cast, the
    /// ``castTensorSample`` smallest cast tensors must be what the cast gives, see `isCast`). Shapes alone do
    /// not tell a fine-tune from the model it started from; an adapter whose shapes do not fit is refused
    /// before this check, naming the tensor.
    ///
    /// Checked when a build or merge is asked for, not when a recorded build is materialized, so builds
    /// recorded with `allowingOtherBase`, or by an earlier lorastore, still pull. The error names manifests by
    /// the tags of repositories `visibility` allows, else by digest: a registry's answer must not name a
    /// repository the asker may not read.
    func checkAdapterBases(
        _ adapters: [Digest], base: StoredManifest, visibleTo visibility: RepositoryVisibility = .all, in db: Database
    ) throws {
        var checked: Set<Digest> = []
        for adapter in adapters where checked.insert(adapter).inserted {
            guard let stored = try manifest(adapter, in: db), let pushedFor = stored.manifest.base,
                  pushedFor != base.digest
            else { continue }
            let comparison = try manifest(pushedFor, in: db).map { BaseComparison($0.manifest, base.manifest) }
            if let comparison, try holdsOneModel(comparison, in: db) { continue }
            func name(_ digest: Digest) throws -> String {
                let tag = try tags(of: digest, visibleTo: visibility, in: db).first
                return tag.map { "\($0) (\(digest.short))" } ?? digest.short
            }
            throw StoreError.adapterForOtherBase(
                adapter: try name(adapter), pushedFor: try name(pushedFor), base: try name(base.digest),
                equalTensors: comparison?.equalTensors, tensors: comparison?.tensors)
        }
    }

    /// Whether the compared bases hold one model: no difference, some tensor to go by, and the sampled cast
    /// tensors rounding to each other.
    private func holdsOneModel(_ comparison: BaseComparison, in db: Database) throws -> Bool {
        guard !comparison.hasDifference, comparison.equalTensors + comparison.castTensors.count > 0 else { return false }
        let sample = comparison.castTensors
            .sorted { ($0.first.size, $0.first.name) < ($1.first.size, $1.first.name) }
            .prefix(Self.castTensorSample)
        return try sample.allSatisfy { try isCast($0.first, $0.second, in: db) }
    }

    /// Whether the two tensors hold one set of weights in two types. With an F32 one, the other must be
    /// what casting it gives (rounded to nearest even), byte for byte. An F16 and a BF16 one may both have
    /// been cast from F32 weights, which puts them up to half a unit in the last place of each type apart
    /// (F16 has the finer significand and the narrower range, so casting one into the other rounds twice
    /// or loses small values): each pair must lie within one unit of each.
    private func isCast(_ one: TensorEntry, _ other: TensorEntry, in db: Database) throws -> Bool {
        let (fine, coarse) = Self.significandBits(one.dtype) >= Self.significandBits(other.dtype) ? (one, other) : (other, one)
        let count = fine.shape.reduce(1, *)
        guard fine.dtype.byteCount(elementCount: count) == fine.size, coarse.dtype.byteCount(elementCount: count) == coarse.size
        else { return false }
        let codecs = try self.codecs(of: [fine.digest, coarse.digest], in: db)
        let fineValues = try blobs.read(fine.digest, codec: codecs[fine.digest] ?? .raw, size: fine.size)
        let coarseValues = try blobs.read(coarse.digest, codec: codecs[coarse.digest] ?? .raw, size: coarse.size)
        // The blobs' bytes may be mappings that end with their contents.
        return try withExtendedLifetime((fineValues, coarseValues)) {
            guard fine.dtype != .f32 else {
                var rounded = [UInt8](repeating: 0, count: coarse.size)
                try rounded.withUnsafeMutableBytes { destination in
                    guard let source = fineValues.bytes.baseAddress, let target = destination.baseAddress else { return }
                    try FloatConversion.convert(source, from: fine.dtype, to: target, as: coarse.dtype, count: count)
                }
                return rounded.elementsEqual(coarseValues.bytes)
            }
            let fineFloats = try FloatConversion.floats(fineValues.bytes, dtype: fine.dtype)
            let coarseFloats = try FloatConversion.floats(coarseValues.bytes, dtype: coarse.dtype)
            return zip(fineFloats, coarseFloats).allSatisfy { a, b in
                (a - b).magnitude <= Self.unit(of: a, significandBits: 10, smallest: 0x1p-24)
                    + Self.unit(of: b, significandBits: 7, smallest: 0x1p-133)
            }
        }
    }

    /// The unit in the last place of `value` in a type of `significandBits` stored bits whose smallest
    /// step (its subnormals') is `smallest`.
    private static func unit(of value: Float, significandBits: Int, smallest: Float) -> Float {
        guard value.isFinite, value != 0 else { return smallest }
        return max(smallest, Float(sign: .plus, exponent: value.exponent - significandBits, significand: 1))
    }

    /// The stored significand bits of a floating-point type: its precision, finest first.
    private static func significandBits(_ dtype: DType) -> Int {
        switch dtype {
        case .f32: 23
        case .f16: 10
        default: 7
        }
    }
}
