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

    /// Runs a pass with the AVX-512 kernel: the same packing and row tasks as the portable kernel, each task
    /// one call into C.
    static func mergeAVX512(
        _ base: UnsafeRawPointer, _ baseType: DType, _ rows: Int, _ cols: Int, _ update: LowRankUpdate,
        _ output: UnsafeMutableRawPointer, _ outputType: DType, _ threads: Int
    ) -> Outcome {
        withPlan(base, rows, cols, update, output, panelBytes: avx512PanelBytes) { plan in
            let rowsPlan = lorastore_merge_rows(
                base: plan.base, output: plan.output, left: plan.left, packed: plan.packed,
                cols: plan.cols, rank: plan.rank, chunks_per_block: plan.chunksPerBlock,
                base_type: elementCode(baseType), output_type: elementCode(outputType),
                native_bf16: nativeBFloat16 ? 1 : 0)
            let shared = AVX512Rows(plan: rowsPlan)
            return parallelRows(plan, threads: threads) { rowStart, rowEnd in
                withUnsafePointer(to: shared.plan) { lorastore_merge_rows_avx512($0, rowStart, rowEnd) != 0 }
            }
        }
    }

    /// Whether the CPU has AVX-512 BF16, whose `vcvtneps2bf16` rounds sixteen values in one instruction
    /// (the kernel keeps the integer rounding for the rare vector holding an F32 subnormal, which that
    /// instruction flushes to zero).
    private static let nativeBFloat16 = lorastore_avx512_bf16_available() != 0

    /// The C plan, shared read-only by the workers (it carries the same raw pointers as ``MergePlan``).
    private struct AVX512Rows: @unchecked Sendable {
        let plan: lorastore_merge_rows
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
