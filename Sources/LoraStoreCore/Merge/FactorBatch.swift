/// The low-rank factors (A and B) of a run of upcoming output tensors, decoded as F32 on all cores before the
/// kernel needs them.
///
/// Decoding one factor blob is serial (a small tensor is one codec chunk), so decoding each tensor's factors
/// just before its kernel pass left every other core idle for that time: up to a fifth of a BF16 rank-16
/// merge's wall time on 2 cores (measured: 258-301 ms against 328-372 ms for a 1 GiB base). A batch holds the factors of consecutive tensors up to ``budget`` bytes of
/// F32 (always at least one tensor's), so memory stays bounded whatever the adapters' size.
struct FactorBatch {
    /// A factor: the adapter's index in the plan and the tensor's name in it.
    struct Key: Hashable, Sendable {
        let adapter: Int
        let name: String
    }

    /// F32 bytes of factors one batch decodes ahead.
    static let budget = 64 << 20

    /// The output tensors whose factors the batch holds: `plan.tensors[range]`.
    let range: Range<Int>
    private let floats: [Key: [Float]]

    /// Decodes the factors of the tensors from `start` on, as many as fit in ``budget`` (at least one).
    /// `measuring` includes the factors of tensors left to the runtime, which only a measured run reads.
    init(plan: MergePlan, from start: Int, measuring: Bool, store: Store) throws {
        var keys: [Key] = []
        var seen: Set<Key> = []
        var bytes = 0
        var end = start
        while end < plan.tensors.count {
            let tensorKeys = Self.keys(of: plan.tensors[end], measuring: measuring).filter { !seen.contains($0) }
            let tensorBytes = tensorKeys.reduce(0) { total, key in
                total + 4 * (plan.adapters[key.adapter].tensors[key.name]?.shape.reduce(1, *) ?? 0)
            }
            if end > start, bytes + tensorBytes > Self.budget { break }
            keys += tensorKeys
            seen.formUnion(tensorKeys)
            bytes += tensorBytes
            end += 1
        }
        let decoded = try keys.parallelMap { key in try plan.adapters[key.adapter].floats(key.name, store: store) }
        range = start..<end
        floats = Dictionary(uniqueKeysWithValues: zip(keys, decoded))
    }

    /// Factor `name` of adapter `adapter`, decoded now if this batch does not hold it.
    func floats(adapter: Int, name: String, plan: MergePlan, store: Store) throws -> [Float] {
        if let values = floats[Key(adapter: adapter, name: name)] { return values }
        return try plan.adapters[adapter].floats(name, store: store)
    }

    /// The factors a tensor's low-rank terms read.
    private static func keys(of tensor: PlannedTensor, measuring: Bool) -> [Key] {
        let terms: [PlannedTensor.Term]
        switch tensor.action {
        case .lowRank(let read, _), .requantize(let read), .dequantize(let read): terms = read
        case .separate(let read) where measuring: terms = read
        case .passThrough, .replace, .addBias, .requantizedScales, .separate: terms = []
        }
        return terms.flatMap { [Key(adapter: $0.adapter, name: $0.module.keyA), Key(adapter: $0.adapter, name: $0.module.keyB)] }
    }
}
