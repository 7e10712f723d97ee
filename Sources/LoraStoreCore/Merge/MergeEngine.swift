import CSIMDKernels
import Foundation

/// Runs a ``MergePlan``: streams the output tensors in base order, computing each changed one with the fused
/// ``LowRankKernel`` (the base read once, the result written once, F32 accumulation, one rounding).
///
/// Memory stays near two output tensors plus the adapters' factors: the two output buffers
/// (``ScratchBuffer``; one computed into while the caller reads the other) are sized for the largest tensor
/// (only the pages written are ever backed by memory), reused for every tensor and kept for the process's
/// next merge, and so is the F32 delta buffer of a measured or requantized
/// merge; base tensors are memory-mapped; factors are decoded on all cores a ``FactorBatch`` (at most 64 MiB
/// of F32, or one tensor's) ahead of the kernel.
public struct MergeEngine: Sendable {
    public let plan: MergePlan
    let store: Store
    /// Worker threads for the kernel; the output is byte-identical for any count.
    public var threads: Int
    /// Bytes of F32 delta a measurement computes at a time (``defaultMeasuredDeltaBlockBytes``); the
    /// figures are the same for any size.
    var measuredDeltaBlockBytes = Self.defaultMeasuredDeltaBlockBytes

    public init(plan: MergePlan, store: Store, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.plan = plan
        self.store = store
        self.threads = max(1, threads)
    }

    /// Computes every output tensor in order and hands its bytes to `body` (on a thread of its own, as
    /// ``run(measuring:_:)`` says); the bytes are valid only during the call.
    public func run(_ body: (PlannedTensor, UnsafeRawBufferPointer) throws -> Void) throws {
        try run(measuring: false, body)
    }

    /// What a merge into caller memory does with a tensor whose output is the base's own bytes
    /// (``PlannedTensor/reusesBaseBytes``).
    public enum UnchangedTensors: Sendable {
        /// Copied into the memory the destination gives for it: the whole merged model in the caller's memory.
        case copied
        /// Neither read, nor written, nor asked of the destination: the caller takes it from the base's blobs
        /// (mapped, and shared by every merge of that base), as a build stores only what changes and as PEFT's
        /// in-place merge leaves untouched weights where they are.
        case leftInBase
    }

    /// Writes the output tensors, in order, into the memory `destination` gives for each (exactly its byte
    /// count): each changed tensor written once by the kernel, and each other one as `unchanged` says.
    public func run(
        unchanged: UnchangedTensors = .copied, into destination: (PlannedTensor) throws -> UnsafeMutableRawBufferPointer
    ) throws {
        _ = try run(
            measuring: false, passThrough: unchanged == .copied ? .copy : .skip, destination: destination,
            handOff: { _, _, _ in })
    }

    /// Computes every output tensor in order and hands its bytes to `body`, and with `measuring` measures
    /// each tensor a low-rank update touches (``FidelityMeasure``: the base as stored in F32, the update's
    /// delta in F32, the output as it reads back). DoRA, `modules_to_save` and bias tensors are not
    /// measured. Returns the measurements in output order (empty without `measuring`).
    ///
    /// `body` runs on a thread of its own (``HandoffThread``), one tensor behind: while it hashes or writes
    /// tensor `i`, the engine computes tensor `i + 1` into a second buffer. Its calls come one at a time, in
    /// order, and all have returned when this does; the bytes are valid only during the call. The first
    /// error `body` throws stops the merge and is rethrown.
    @discardableResult
    public func run(
        measuring: Bool, _ body: (PlannedTensor, UnsafeRawBufferPointer) throws -> Void
    ) throws -> [BuildReport.Tensor] {
        let capacity = plan.tensors.map(\.byteCount).max() ?? 0
        // Tensor `i` is written into `buffers[i % 2]`: `body` still reads the other one.
        let buffers = [ScratchBuffer.Pool.shared.take(atLeast: capacity), ScratchBuffer.Pool.shared.take(atLeast: capacity)]
        defer { buffers.forEach(ScratchBuffer.Pool.shared.recycle) }
        var written = 0
        return try withoutActuallyEscaping(body) { body in
            // `body` only ever runs on the consumer's thread, one call at a time, and every call has returned
            // once `finish()` has.
            nonisolated(unsafe) let body = body
            let consumer = HandoffThread()
            defer { try? consumer.finish() }
            let measured = try run(
                measuring: measuring, passThrough: .handOver,
                destination: { tensor in
                    defer { written += 1 }
                    return UnsafeMutableRawBufferPointer(rebasing: buffers[written % 2].bytes[0..<tensor.byteCount])
                },
                handOff: { tensor, bytes, base in
                    // The consumer's call keeps the base's blob (mapped, and maybe the bytes handed over) alive.
                    nonisolated(unsafe) let bytes = bytes
                    try consumer.submit { try withExtendedLifetime(base) { try body(tensor, bytes) } }
                })
            try consumer.finish()
            return measured
        }
    }

    /// What the merge loop does with a tensor whose output is the base's own bytes.
    private enum PassThrough {
        /// Hand it to the loop's `body` straight from the base's mapping.
        case handOver
        /// Copy it into the memory `destination` gives for it.
        case copy
        /// Leave it out: neither read, nor written, nor given to `body`.
        case skip
    }

    /// The merge loop: each output tensor is written to the memory `destination` gives for it, except a
    /// tensor whose output is the base's own bytes, which `passThrough` decides, then given to `handOff`
    /// with the base's blob, which holds the bytes of a tensor handed over.
    private func run(
        measuring: Bool, passThrough: PassThrough, destination: (PlannedTensor) throws -> UnsafeMutableRawBufferPointer,
        handOff: (PlannedTensor, UnsafeRawBufferPointer, BlobContents) throws -> Void
    ) throws -> [BuildReport.Tensor] {
        let codecs = try store.index.database.read { db in
            try store.codecs(of: plan.base.manifest.tensors.map(\.digest), in: db)
        }
        var measured: [BuildReport.Tensor] = []
        var pendingScales: [String: [UInt8]] = [:]
        // The deltas requantization computes, one tensor at a time in one buffer, so a build requantized
        // tensor by tensor touches fresh memory once (see `delta`); measurements compute theirs in blocks.
        let deltas = requantizedDeltaByteCount().map { ScratchBuffer.Pool.deltas.take(atLeast: $0) }
        defer { deltas.map(ScratchBuffer.Pool.deltas.recycle) }
        var factors = try FactorBatch(plan: plan, from: 0, measuring: measuring, store: store)
        for (index, tensor) in plan.tensors.enumerated() {
            if passThrough == .skip, tensor.reusesBaseBytes { continue }
            if !factors.range.contains(index) {
                factors = try FactorBatch(plan: plan, from: index, measuring: measuring, store: store)
            }
            let base = try read(tensor.base, codecs: codecs)
            defer { withExtendedLifetime(base) {} }
            let result = try destination(tensor)
            guard result.count == tensor.byteCount else {
                throw StoreError.mergeRefused("\(result.count) bytes given for \(tensor.name), which has \(tensor.byteCount)")
            }
            switch tensor.action {
            case .passThrough where tensor.reusesBaseBytes && passThrough == .handOver:
                try handOff(tensor, base.bytes, base)
                continue
            case .passThrough where tensor.reusesBaseBytes:
                Self.copy(base.bytes, into: result, threads: threads)
            case .passThrough:
                try convert(base.bytes, from: tensor.base.dtype, into: result, as: tensor.dtype)
            case .lowRank(let terms, let dora):
                try mergeLowRank(tensor, base: base.bytes, terms: terms, dora: dora, factors: factors, into: result)
                if measuring, dora == nil {
                    measured.append(
                        try measure(
                            tensor, terms: terms, factors: factors, base: (base.bytes, tensor.base.dtype),
                            output: (UnsafeRawBufferPointer(result), tensor.dtype)))
                }
            case .replace(let replacement):
                try write(try replaced(base.bytes, dtype: tensor.base.dtype, by: replacement), tensor: tensor, into: result)
            case .addBias(let terms, let replacement):
                var values = try replacement.map { try replaced(base.bytes, dtype: tensor.base.dtype, by: $0) }
                    ?? FloatConversion.floats(base.bytes, dtype: tensor.base.dtype)
                for term in terms {
                    let bias = try plan.adapters[term.adapter].floats(term.key, store: store)
                    let coefficient = Float(term.coefficient)
                    for index in values.indices { values[index] = values[index].addingProduct(coefficient, bias[index]) }
                }
                try write(values, tensor: tensor, into: result)
            case .requantize(let terms):
                let quantized = try quantizedBase(tensor, data: base.bytes, codecs: codecs)
                guard let deltas else { throw StoreError.mergeRefused("no delta buffer for \(tensor.name)") }
                let delta = try self.delta(
                    terms, factors: factors, rows: quantized.rows, columns: quantized.columns, of: tensor.name,
                    into: deltas)
                let merged: QuantizedTensor
                do {
                    merged = try Quantizer.requantize(quantized, adding: delta)
                } catch {
                    throw StoreError.mergeRefused("requantizing \(tensor.name) (its base dequantized, plus the adapters' delta): \(error)")
                }
                merged.data.withUnsafeBytes { result.copyMemory(from: $0) }
                pendingScales[tensor.name] = merged.scales
                if measuring {
                    let codes = try merged.codeDifference(from: quantized)
                    measured.append(
                        try Quantizer.dequantize(quantized).withUnsafeBytes { base in
                            try Quantizer.dequantize(merged).withUnsafeBytes { output in
                                try measure(
                                    tensor, delta: delta, rows: quantized.rows, base: (base, .f32), output: (output, .f32),
                                    codes: codes)
                            }
                        })
                }
            case .requantizedScales(let weight):
                guard let scales = pendingScales.removeValue(forKey: weight), scales.count == result.count else {
                    throw StoreError.mergeRefused("the scales of \(weight) were not computed before \(tensor.name)")
                }
                scales.withUnsafeBytes { result.copyMemory(from: $0) }
            case .dequantize(let terms):
                let quantized = try quantizedBase(tensor, data: base.bytes, codecs: codecs)
                let values = Quantizer.dequantize(quantized)
                guard !terms.isEmpty else {
                    try write(values, tensor: tensor, into: result)
                    break
                }
                let update = try lowRankUpdate(terms, factors: factors, rows: quantized.rows, columns: quantized.columns)
                let outcome = try values.withUnsafeBytes { source in
                    guard let baseAddress = source.baseAddress, let resultAddress = result.baseAddress else {
                        return LowRankKernel.Outcome(hasNonFiniteOutput: false)
                    }
                    return try LowRankKernel.merge(
                        base: baseAddress, baseType: .f32, rows: quantized.rows, cols: quantized.columns, update: update,
                        output: resultAddress, outputType: tensor.dtype, threads: threads)
                }
                if outcome.hasNonFiniteOutput { throw StoreError.nonFiniteResult(tensor: tensor.name) }
                if measuring {
                    measured.append(
                        try values.withUnsafeBytes { base in
                            try measure(
                                tensor, terms: terms, factors: factors, base: (base, .f32),
                                output: (UnsafeRawBufferPointer(result), tensor.dtype))
                        })
                }
            case .separate(let terms):
                if passThrough == .copy { Self.copy(base.bytes, into: result, threads: threads) }
                try handOff(tensor, base.bytes, base)
                if measuring {
                    let stored = (base.bytes, tensor.base.dtype)
                    measured.append(
                        try tensor.quantized == nil
                            ? measure(tensor, terms: terms, factors: factors, base: stored, output: stored)
                            : Quantizer.dequantize(try quantizedBase(tensor, data: base.bytes, codecs: codecs)).withUnsafeBytes {
                                try measure(tensor, terms: terms, factors: factors, base: ($0, .f32), output: ($0, .f32))
                            })
                }
                continue
            }
            try handOff(tensor, UnsafeRawBufferPointer(result), base)
        }
        return measured
    }

    /// Copies a tensor passed through (for ``run(into:)``, the merged model in memory), in one contiguous
    /// share per thread of at least 4 MiB. A tensor of 4 MiB or more is copied with streaming stores
    /// (`lorastore_copy_streaming`): the merge does not read the copy back, so reading each destination
    /// line before writing it (half as much traffic again) and filling the caches with it would only slow
    /// the kernel's next tensor.
    static func copy(_ source: UnsafeRawBufferPointer, into result: UnsafeMutableRawBufferPointer, threads: Int) {
        guard let from = source.baseAddress, let to = result.baseAddress, source.count >= streamingCopyBytes else {
            result.copyMemory(from: source)
            return
        }
        let workers = max(1, min(threads, source.count / streamingCopyBytes))
        // Each worker writes only its own share of `result`.
        nonisolated(unsafe) let (shared, target) = (from, to)
        let count = source.count
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers
            let end = count * (worker + 1) / workers
            lorastore_copy_streaming(target.advanced(by: start), shared.advanced(by: start), end - start)
        }
    }

    /// The size from which ``copy(_:into:threads:)`` streams, and the least share it gives a thread.
    static let streamingCopyBytes = 4 << 20

    /// A base tensor's bytes, checked against the recorded size.
    private func read(_ entry: TensorEntry, codecs: [Digest: BlobCodec]) throws -> BlobContents {
        try store.blobs.read(entry.digest, codec: codecs[entry.digest] ?? .raw, size: entry.size)
    }

    /// The quantized base weight behind `tensor`: its stored bytes and, for `int8-row`, its scales.
    private func quantizedBase(
        _ tensor: PlannedTensor, data: UnsafeRawBufferPointer, codecs: [Digest: BlobCodec]
    ) throws -> QuantizedTensor {
        guard let source = tensor.quantized else {
            throw StoreError.mergeRefused("\(tensor.name) is not a quantized weight")
        }
        var scales: [UInt8] = []
        if let entry = source.scales {
            let contents = try read(entry, codecs: codecs)
            scales = withExtendedLifetime(contents) { Array(contents.bytes) }
        }
        do {
            return try QuantizedTensor(
                scheme: source.weight.scheme, rows: source.weight.rows, columns: source.weight.columns, data: Array(data),
                scales: scales)
        } catch {
            throw BlobStoreError.damaged(tensor.base.digest, reason: "\(tensor.name): \(error)")
        }
    }

    /// Bytes of the largest delta the run computes whole (`rows × columns` F32 of a tensor it requantizes),
    /// or nil when it computes none.
    private func requantizedDeltaByteCount() -> Int? {
        plan.tensors.compactMap { tensor -> Int? in
            guard case .requantize(let terms) = tensor.action, let first = terms.first else { return nil }
            return 4 * first.module.rows * first.module.columns
        }.max()
    }

    /// The terms' delta `Σ coefficient·B·A` in F32, row-major `rows × columns`, written at the start of
    /// `buffer` (valid until the next call): the kernel run on a zero base, so it is exactly the delta a
    /// merge adds before its one rounding.
    ///
    /// - Throws: ``StoreError/mergeRefused(_:)`` naming `tensor` when the delta itself is not finite.
    private func delta(
        _ terms: [PlannedTensor.Term], factors: FactorBatch, rows: Int, columns: Int, of tensor: String,
        into buffer: ScratchBuffer
    ) throws -> UnsafeBufferPointer<Float> {
        let update = try lowRankUpdate(terms, factors: factors, rows: rows, columns: columns)
        let count = rows * columns
        guard count * 4 <= buffer.bytes.count, let address = buffer.bytes.baseAddress else {
            throw StoreError.mergeRefused("the delta of \(tensor) does not fit the buffer planned for it")
        }
        let values = UnsafeMutableBufferPointer(start: address.bindMemory(to: Float.self, capacity: count), count: count)
        try write(update, of: tensor, into: values)
        return UnsafeBufferPointer(values)
    }

    /// Writes `update`'s delta into `values` (`update.rows × update.cols` F32): the kernel run on a zero
    /// base, so it is exactly the delta a merge adds before its one rounding.
    ///
    /// - Throws: ``StoreError/mergeRefused(_:)`` naming `tensor` when the delta is not finite.
    private func write(_ update: LowRankUpdate, of tensor: String, into values: UnsafeMutableBufferPointer<Float>) throws {
        guard let address = values.baseAddress else { return }
        values.initialize(repeating: 0)
        let outcome = try LowRankKernel.merge(
            base: address, baseType: .f32, rows: update.rows, cols: update.cols, update: update, output: address,
            outputType: .f32, threads: threads)
        if outcome.hasNonFiniteOutput {
            throw StoreError.mergeRefused("the adapters' delta for \(tensor) has NaN or infinite values")
        }
    }

    /// A tensor as ``FidelityMeasure`` reads it: its bytes as stored and their type (F32, F16 or BF16).
    private typealias StoredValues = (bytes: UnsafeRawBufferPointer, dtype: DType)

    /// Measures one touched tensor from its base and output, computing the terms' delta
    /// ``measuredDeltaBlockBytes`` at a time (so a large tensor's measurement needs no F32 copy of it).
    private func measure(
        _ tensor: PlannedTensor, terms: [PlannedTensor.Term], factors: FactorBatch, base: StoredValues,
        output: StoredValues
    ) throws -> BuildReport.Tensor {
        guard let first = terms.first else {
            throw StoreError.mergeRefused("\(tensor.name) has no adapter terms to measure")
        }
        let (rows, columns) = (first.module.rows, first.module.columns)
        let update = try lowRankUpdate(terms, factors: factors, rows: rows, columns: columns)
        let comparison: FidelityMeasure.Comparison
        do {
            comparison = try FidelityMeasure.measure(
                base: base.bytes, baseType: base.dtype, output: output.bytes, outputType: output.dtype, rows: rows,
                columns: columns, blockRows: measuredDeltaBlockBytes / max(1, 4 * columns)
            ) { range, values in
                try write(update.rows(range), of: tensor.name, into: values)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.mergeRefused("measuring \(tensor.name): \(error)")
        }
        return BuildReport.Tensor(name: tensor.name, fidelity: comparison)
    }

    /// Bytes of F32 delta a measurement computes at a time by default: a few blocks per large tensor, few
    /// enough that each block's kernel pass and row sums still keep every core busy.
    static let defaultMeasuredDeltaBlockBytes = 32 << 20

    private func measure(
        _ tensor: PlannedTensor, delta: UnsafeBufferPointer<Float>, rows: Int, base: StoredValues,
        output: StoredValues, codes: QuantizedTensor.CodeDifference?
    ) throws -> BuildReport.Tensor {
        let columns = rows > 0 ? delta.count / rows : 0
        do {
            let comparison = try FidelityMeasure.measure(
                base: base.bytes, baseType: base.dtype, delta: delta, output: output.bytes, outputType: output.dtype,
                rows: rows, columns: columns, codes: codes)
            return BuildReport.Tensor(name: tensor.name, fidelity: comparison)
        } catch {
            throw StoreError.mergeRefused("measuring \(tensor.name): \(error)")
        }
    }

    private func mergeLowRank(
        _ tensor: PlannedTensor, base: UnsafeRawBufferPointer, terms: [PlannedTensor.Term], dora: PlannedTensor.DoRA?,
        factors: FactorBatch, into result: UnsafeMutableRawBufferPointer
    ) throws {
        guard let first = terms.first, let baseAddress = base.baseAddress, let resultAddress = result.baseAddress else {
            return
        }
        let rows = first.module.rows
        let columns = first.module.columns
        let update = try lowRankUpdate(terms, factors: factors, rows: rows, columns: columns)
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
    private func lowRankUpdate(
        _ terms: [PlannedTensor.Term], factors: FactorBatch, rows: Int, columns: Int
    ) throws -> LowRankUpdate {
        var parts: [(scale: Float, left: [Float], right: [Float], rank: Int)] = []
        // Which factor of each part is the adapter's A: the right one, or the left one once transposed.
        var leftIsA: [Bool] = []
        for term in terms {
            let a = try factors.floats(adapter: term.adapter, name: term.module.keyA, plan: plan, store: store)
            let b = try factors.floats(adapter: term.adapter, name: term.module.keyB, plan: plan, store: store)
            let rank = term.module.rank
            if term.module.transposed {
                // Δᵀ = (B·A)ᵀ = Aᵀ·Bᵀ, with A [r, rows] and B [columns, r].
                parts.append((Float(term.coefficient), transpose(a, rows: rank, columns: rows), transpose(b, rows: columns, columns: rank), rank))
            } else {
                parts.append((Float(term.coefficient), b, a, rank))
            }
            leftIsA.append(term.module.transposed)
        }
        guard plan.options.combine == .peftLinear, let rank = parts.first?.rank, let first = plan.adapters.first else {
            return try LowRankUpdate.concatenating(parts, rows: rows, cols: columns)
        }
        // PEFT's linear combination (`add_weighted_adapter`, used even for one adapter): Σ cᵢ·Bᵢ times Σ ±cᵢ·Aᵢ
        // with cᵢ = √|wᵢ·sᵢ| and the sign of wᵢ·sᵢ on A, scaled as the combined adapter PEFT configures: the
        // first adapter's settings with r = lora_alpha = its rank, so √r with rsLoRA and 1 without.
        let combinedScale = first.config.useRSLoRA ? Float(first.config.largestRank).squareRoot() : 1
        var left = [Float](repeating: 0, count: rows * rank)
        var right = [Float](repeating: 0, count: rank * columns)
        for (part, leftIsA) in zip(parts, leftIsA) {
            let factor = abs(part.scale).squareRoot()
            let signed = part.scale < 0 ? -factor : factor
            let (leftFactor, rightFactor) = leftIsA ? (signed, factor) : (factor, signed)
            for index in left.indices { left[index] = left[index].addingProduct(leftFactor, part.left[index]) }
            for index in right.indices { right[index] = right[index].addingProduct(rightFactor, part.right[index]) }
        }
        if combinedScale != 1 {
            for index in left.indices { left[index] *= combinedScale }
        }
        return try LowRankUpdate(rows: rows, cols: columns, rank: rank, left: left, right: right)
    }

    /// modules_to_save: exactly the saved tensor at weight 1, else W + w·(S − W) in F32.
    /// A replaced tensor in F32: W + w·(S − W), exactly the adapter's S at weight 1.
    private func replaced(
        _ base: UnsafeRawBufferPointer, dtype: DType, by replacement: PlannedTensor.Replacement
    ) throws -> [Float] {
        let saved = try plan.adapters[replacement.adapter].floats(replacement.key, store: store)
        guard replacement.weight != 1 else { return saved }
        var values = try FloatConversion.floats(base, dtype: dtype)
        let coefficient = Float(replacement.weight)
        for index in values.indices {
            values[index] = values[index].addingProduct(coefficient, saved[index] - values[index])
        }
        return values
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
