import CSIMDKernels

extension LowRankKernel {
    /// The code that runs a merge pass. Both give byte-identical results: the same F32 fused multiply-adds
    /// per element, in the same order, and the same single rounding.
    public enum Implementation: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Swift SIMD over 8 lanes (AVX2 and FMA on x86_64), on every CPU the package builds for.
        case portable
        /// C with AVX-512 intrinsics over 16 lanes (8 × 32 register tiles), chosen at run time because
        /// the Swift code is compiled for one CPU level (Haswell) that AVX-512 machines extend. A rank-r
        /// merge does r multiply-adds per weight element; 16-lane vectors halve the instructions that takes,
        /// and BF16 rounding is one instruction where the CPU has AVX-512 BF16.
        case avx512

        /// The fastest implementation this CPU runs, used by default.
        public static let preferred: Implementation = avx512Supported ? .avx512 : .portable

        /// Whether this CPU (and its operating system) runs the implementation.
        public var isAvailable: Bool {
            switch self {
            case .portable: true
            case .avx512: Self.avx512Supported
            }
        }

        public var description: String { rawValue }

        private static let avx512Supported = lorastore_avx512_available() != 0
    }

    /// Bytes of packed panels the AVX-512 kernel sweeps at a time: half the 2 MiB L2 of the cores it was
    /// tuned on, so for usual ranks the whole right factor stays in L2 and the weight streams row after row
    /// instead of in short segments (measured in a C probe on a BF16 5632 × 2048, rank-16 merge, best of
    /// runs: 4.7 against 3.9 GB/s on one thread, 8.0 against 7.5 GB/s on two, for the portable kernel's
    /// 24 KiB panels).
    static let avx512PanelBytes = 1 << 20

    /// Output bytes from which the AVX-512 kernel writes with non-temporal stores. An ordinary store first
    /// reads the line it overwrites; a streaming one does not, and a tensor this large is out of the caches
    /// before anyone reads it back anyway. Measured in a C probe (65536 × 2048, rank 16, 2 threads, AMD EPYC
    /// Zen 5, alternated, three rounds): F32 21–22 GB/s → 31–33 GB/s, BF16 19–20 → 21 GB/s (that merge is
    /// bound by its multiply-adds).
    static let streamingStoreBytes = 8 << 20

    /// Runs a pass with the AVX-512 kernel: the same panels and row tasks as the portable kernel, each task
    /// one call into C, which first scales and packs the task's rows of the left factors into its worker's
    /// scratch (so that work is spread over the workers instead of done on one thread beforehand).
    /// `streaming` selects non-temporal stores (``streamingStoreBytes``).
    static func mergeAVX512(
        _ base: UnsafeRawPointer, _ baseType: DType, _ rows: Int, _ cols: Int, _ update: LowRankUpdate,
        _ output: UnsafeMutableRawPointer, _ outputType: DType, _ threads: Int, streaming: Bool
    ) -> Outcome {
        let workers = workerCount(tasks: taskCount(rows: rows), threads: threads)
        let scratchPerWorker = max(rowsPerTask * update.rank, 1)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * scratchPerWorker)
        defer { scratch.deallocate() }
        // Only the paired BF16 rounding of a 16-bit base reads the bound.
        let boundedDelta = baseType != .f32 && outputType == .bf16 && nativeBFloat16 && hasBoundedDelta(update)
        let nonFinite = withPanels(update, panelBytes: avx512PanelBytes) { panels in
            withLeftParts(update.parts[...], collected: []) { parts in
                let shared = AVX512Rows(
                    plan: lorastore_merge_rows(
                        base: base, output: output, parts: parts.baseAddress, part_count: parts.count,
                        packed: panels.packed, cols: cols, rank: update.rank, chunks_per_block: panels.chunksPerBlock,
                        base_type: elementCode(baseType), output_type: elementCode(outputType),
                        native_bf16: nativeBFloat16 ? 1 : 0, bounded_delta: boundedDelta ? 1 : 0,
                        streaming_stores: streaming ? 1 : 0),
                    scratch: scratch, scratchPerWorker: scratchPerWorker)
                return parallelRows(rows, threads: workers) { worker, rowStart, rowEnd in
                    let workerScratch = shared.scratch + worker * shared.scratchPerWorker
                    return withUnsafePointer(to: shared.plan) {
                        lorastore_merge_rows_avx512($0, rowStart, rowEnd, workerScratch) != 0
                    }
                }
            }
        }
        return Outcome(hasNonFiniteOutput: nonFinite)
    }

    /// Whether every delta of `update` is below 2^100 in magnitude, the kernel's `bounded_delta`: each is a
    /// sum of `rank` products `scale · left · right` per part, so `Σ |scale| · rank · max|left| · max|right|`
    /// bounds it, with far more room than F32 rounding needs. The maxima skip NaN, which makes its sums NaN
    /// (seen by the kernel either way); an infinite factor makes the bound infinite.
    private static func hasBoundedDelta(_ update: LowRankUpdate) -> Bool {
        let bound = update.parts.reduce(0.0) { sum, part in
            sum + Double(part.scale.magnitude) * Double(part.rank)
                * Double(largestMagnitude(part.left)) * Double(largestMagnitude(part.right))
        }
        return bound < 0x1p100
    }

    /// The largest magnitude among `values`, NaN skipped, sixteen lanes at a time.
    private static func largestMagnitude(_ values: [Float]) -> Float {
        values.withUnsafeBufferPointer { lorastore_largest_magnitude_avx512($0.baseAddress, $0.count) }
    }

    /// Calls `body` with the C view of `parts` (after those already `collected`), each pointing into its
    /// part's left factor, which stays valid during the call.
    private static func withLeftParts<Result>(
        _ parts: ArraySlice<LowRankUpdate.Part>, collected: [lorastore_left_part],
        _ body: (UnsafeBufferPointer<lorastore_left_part>) -> Result
    ) -> Result {
        guard let part = parts.first else { return collected.withUnsafeBufferPointer(body) }
        return part.left.withUnsafeBufferPointer { left in
            let view = lorastore_left_part(left: left.baseAddress, rank: part.rank, scale: part.scale)
            return withLeftParts(parts.dropFirst(), collected: collected + [view], body)
        }
    }

    /// Whether the CPU has AVX-512 BF16, whose `vcvtneps2bf16` rounds sixteen values in one instruction
    /// (the kernel keeps the integer rounding for the rare vector holding an F32 subnormal, which that
    /// instruction flushes to zero).
    private static let nativeBFloat16 = lorastore_avx512_bf16_available() != 0

    /// The C plan, shared read-only by the workers (it carries raw pointers, as ``MergePlan`` does), and
    /// the workers' scratch: worker `w` alone writes the `scratchPerWorker` floats at `w · scratchPerWorker`.
    private struct AVX512Rows: @unchecked Sendable {
        let plan: lorastore_merge_rows
        let scratch: UnsafeMutablePointer<Float>
        let scratchPerWorker: Int
    }

    /// The C kernel's code for a mergeable type (F32, F16, BF16; callers have checked `isMergeable`).
    private static func elementCode(_ type: DType) -> Int32 {
        switch type {
        case .f32: Int32(LORASTORE_ELEMENT_F32)
        case .f16: Int32(LORASTORE_ELEMENT_F16)
        default: Int32(LORASTORE_ELEMENT_BF16)
        }
    }
}
