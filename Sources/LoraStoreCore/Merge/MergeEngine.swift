import Foundation

/// Runs a ``MergePlan``: streams the output tensors in base order, computing each changed one with the fused
/// ``LowRankKernel`` (the base read once, the result written once, F32 accumulation, one rounding).
///
/// Memory stays near one output tensor plus the adapters' factors: the output buffer is allocated once, for
/// the largest tensor, and reused; base tensors are memory-mapped.
public struct MergeEngine: Sendable {
    public let plan: MergePlan
    let store: Store
    /// Worker threads for the kernel; the output is byte-identical for any count.
    public var threads: Int

    public init(plan: MergePlan, store: Store, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.plan = plan
        self.store = store
        self.threads = max(1, threads)
    }

    /// Computes every output tensor in order and hands its bytes to `body`; the bytes are valid only during
    /// the call.
    public func run(_ body: (PlannedTensor, UnsafeRawBufferPointer) throws -> Void) throws {
        let codecs = try store.index.database.read { db in
            try store.codecs(of: plan.base.manifest.tensors.map(\.digest), in: db)
        }
        let capacity = plan.tensors.map(\.byteCount).max() ?? 0
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
        defer { output.deallocate() }
        for tensor in plan.tensors {
            let base = try store.blobs.read(tensor.base.digest, codec: codecs[tensor.base.digest] ?? .raw)
            guard base.bytes.count == tensor.base.size else {
                throw BlobStoreError.damaged(tensor.base.digest, reason: "\(base.bytes.count) bytes, expected \(tensor.base.size)")
            }
            let result = UnsafeMutableRawBufferPointer(rebasing: output[0..<tensor.byteCount])
            switch tensor.action {
            case .passThrough where tensor.dtype == tensor.base.dtype:
                try body(tensor, base.bytes)
                continue
            case .passThrough:
                try convert(base.bytes, from: tensor.base.dtype, into: result, as: tensor.dtype)
            case .lowRank(let terms, let dora):
                try mergeLowRank(tensor, base: base.bytes, terms: terms, dora: dora, into: result)
            case .replace(let adapter, let key, let weight):
                try replace(tensor, base: base.bytes, adapter: adapter, key: key, weight: weight, into: result)
            case .addBias(let terms):
                var values = try floats(base.bytes, dtype: tensor.base.dtype)
                for term in terms {
                    let bias = try plan.adapters[term.adapter].floats(term.key, store: store)
                    let coefficient = Float(term.coefficient)
                    for index in values.indices { values[index] = values[index].addingProduct(coefficient, bias[index]) }
                }
                try write(values, tensor: tensor, into: result)
            }
            try body(tensor, UnsafeRawBufferPointer(result))
        }
    }

    private func mergeLowRank(
        _ tensor: PlannedTensor, base: UnsafeRawBufferPointer, terms: [PlannedTensor.Term], dora: PlannedTensor.DoRA?,
        into result: UnsafeMutableRawBufferPointer
    ) throws {
        guard let first = terms.first, let baseAddress = base.baseAddress, let resultAddress = result.baseAddress else {
            return
        }
        let rows = first.module.rows
        let columns = first.module.columns
        let update = try lowRankUpdate(terms, rows: rows, columns: columns)
        guard let dora else {
            let outcome = try LowRankKernel.merge(
                base: baseAddress, baseType: tensor.base.dtype, rows: rows, cols: columns, update: update,
                output: resultAddress, outputType: tensor.dtype, threads: threads)
            if outcome.hasNonFiniteOutput { throw StoreError.nonFiniteResult(tensor: tensor.name) }
            return
        }
        // DoRA: W' = m / ‖W + ΔW‖ · (W + ΔW), the norm per output feature, all in F32, rounded once.
        var combined = [Float](repeating: 0, count: rows * columns)
        let magnitude = try plan.adapters[dora.adapter].floats(dora.magnitudeKey, store: store)
        let outcome = try combined.withUnsafeMutableBufferPointer { scratch in
            guard let scratchAddress = scratch.baseAddress else { return LowRankKernel.Outcome(hasNonFiniteOutput: false) }
            _ = try LowRankKernel.merge(
                base: baseAddress, baseType: tensor.base.dtype, rows: rows, cols: columns, update: update,
                output: scratchAddress, outputType: .f32, threads: threads)
            let norms = dora.transposed
                ? LowRankKernel.columnNorms(scratchAddress, rows: rows, cols: columns)
                : LowRankKernel.rowNorms(scratchAddress, rows: rows, cols: columns)
            let factors = zip(magnitude, norms).map { $0 / $1 }
            return dora.transposed
                ? try LowRankKernel.scaleColumns(
                    scratchAddress, rows: rows, cols: columns, factors: factors, output: resultAddress,
                    outputType: tensor.dtype, threads: threads)
                : try LowRankKernel.scaleRows(
                    scratchAddress, rows: rows, cols: columns, factors: factors, output: resultAddress,
                    outputType: tensor.dtype, threads: threads)
        }
        if outcome.hasNonFiniteOutput { throw StoreError.nonFiniteResult(tensor: tensor.name) }
    }

    /// The terms as one update `L·R` in the base tensor's layout (rows × columns).
    private func lowRankUpdate(_ terms: [PlannedTensor.Term], rows: Int, columns: Int) throws -> LowRankUpdate {
        var parts: [(scale: Float, left: [Float], right: [Float], rank: Int)] = []
        for term in terms {
            let adapter = plan.adapters[term.adapter]
            let a = try adapter.floats(term.module.keyA, store: store)
            let b = try adapter.floats(term.module.keyB, store: store)
            let rank = term.module.rank
            if term.module.transposed {
                // Δᵀ = (B·A)ᵀ = Aᵀ·Bᵀ, with A [r, rows] and B [columns, r].
                parts.append((Float(term.coefficient), transpose(a, rows: rank, columns: rows), transpose(b, rows: columns, columns: rank), rank))
            } else {
                parts.append((Float(term.coefficient), b, a, rank))
            }
        }
        guard plan.options.combine == .peftLinear, parts.count > 1, let rank = parts.first?.rank else {
            return try LowRankUpdate.concatenating(parts, rows: rows, cols: columns)
        }
        // PEFT's linear combination: Σ cᵢ·leftᵢ times Σ cᵢ·rightᵢ with cᵢ = √|wᵢ·sᵢ|, the sign on the left.
        var left = [Float](repeating: 0, count: rows * rank)
        var right = [Float](repeating: 0, count: rank * columns)
        for part in parts {
            let factor = abs(part.scale).squareRoot()
            let signed = part.scale < 0 ? -factor : factor
            for index in left.indices { left[index] = left[index].addingProduct(signed, part.left[index]) }
            for index in right.indices { right[index] = right[index].addingProduct(factor, part.right[index]) }
        }
        return try LowRankUpdate(rows: rows, cols: columns, rank: rank, left: left, right: right)
    }

    /// modules_to_save: exactly the saved tensor at weight 1, else W + w·(S − W) in F32.
    private func replace(
        _ tensor: PlannedTensor, base: UnsafeRawBufferPointer, adapter: Int, key: String, weight: Double,
        into result: UnsafeMutableRawBufferPointer
    ) throws {
        let saved = try plan.adapters[adapter].floats(key, store: store)
        guard weight != 1 else {
            try write(saved, tensor: tensor, into: result)
            return
        }
        var values = try floats(base, dtype: tensor.base.dtype)
        let coefficient = Float(weight)
        for index in values.indices {
            values[index] = values[index].addingProduct(coefficient, saved[index] - values[index])
        }
        try write(values, tensor: tensor, into: result)
    }

    private func floats(_ bytes: UnsafeRawBufferPointer, dtype: DType) throws -> [Float] {
        let count = bytes.count / (dtype.byteWidth ?? 1)
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let source = bytes.baseAddress, let destination = buffer.baseAddress {
                try FloatConversion.convert(source, from: dtype, to: destination, as: .f32, count: count)
            }
            initialized = count
        }
    }

    /// Rounds F32 values once into the tensor's output type, refusing non-finite results.
    private func write(_ values: [Float], tensor: PlannedTensor, into result: UnsafeMutableRawBufferPointer) throws {
        try values.withUnsafeBytes { source in
            try convert(source, from: .f32, into: result, as: tensor.dtype)
        }
        guard FiniteCheck.allFinite(UnsafeRawBufferPointer(result), dtype: tensor.dtype) else {
            throw StoreError.nonFiniteResult(tensor: tensor.name)
        }
    }

    private func convert(
        _ source: UnsafeRawBufferPointer, from sourceType: DType, into result: UnsafeMutableRawBufferPointer, as outputType: DType
    ) throws {
        guard let sourceAddress = source.baseAddress, let resultAddress = result.baseAddress else { return }
        let count = source.count / (sourceType.byteWidth ?? 1)
        try FloatConversion.convert(sourceAddress, from: sourceType, to: resultAddress, as: outputType, count: count)
    }

    private func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var transposed = [Float](repeating: 0, count: values.count)
        for row in 0..<rows {
            for column in 0..<columns {
                transposed[column * rows + row] = values[row * columns + column]
            }
        }
        return transposed
    }
}
