// The AVX-512 merge kernel, chosen at run time by `LowRankKernel` when the CPU has AVX-512.
//
// Swift compiles the whole package for one CPU level (Haswell: AVX2 and FMA), so 512-bit code has to come
// from functions that carry their own target attribute and are only called after a CPUID check. Every
// element gets exactly the arithmetic of the portable Swift kernel: the delta accumulated from zero with
// F32 fused multiply-adds in increasing k, one F32 addition of the widened base, one rounding to nearest
// even into the output type. The outputs of the two kernels are therefore byte-identical.

#include "CLowRankKernel.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

// The BF16 conversion instruction is in the attribute too, so that one copy of the code can use it; it
// runs only behind `plan->native_bf16`, which the caller sets from `lorastore_avx512_bf16_available()`.
#define LORASTORE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define LORASTORE_INLINE static inline __attribute__((always_inline)) LORASTORE_AVX512

/// `vfpclassps` categories: F32 subnormals, and NaN or infinity.
#define FP_CLASS_SUBNORMAL 0x20
#define FP_CLASS_NAN_OR_INFINITY (0x01 | 0x08 | 0x10 | 0x80)

/// Lanes of one ZMM register of F32, and the columns of one packed panel.
#define LANES 16
/// Rows of a register tile; with two panels that is sixteen accumulators.
#define TILE_ROWS 8

static uint64_t extended_control_register(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

int lorastore_avx512_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned osxsave = 1u << 27, fma = 1u << 12, f16c = 1u << 29;
    if ((ecx & osxsave) == 0 || (ecx & fma) == 0 || (ecx & f16c) == 0) return 0;
    // XMM, YMM, the opmask registers and both halves of the ZMM state must be enabled by the OS.
    const uint64_t zmmState = 0xE6;
    if ((extended_control_register() & zmmState) != zmmState) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx512f = 1u << 16, avx512dq = 1u << 17, avx512bw = 1u << 30, avx512vl = 1u << 31;
    const unsigned needed = avx512f | avx512dq | avx512bw | avx512vl;
    return (ebx & needed) == needed;
}

int lorastore_avx512_bf16_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!lorastore_avx512_available() || !__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx512bf16 = 1u << 5;
    return (eax & avx512bf16) != 0;
}

/// Loads sixteen elements (the lanes in `mask`, zero elsewhere) widened to F32.
LORASTORE_INLINE __m512 load_lanes(const void *base, size_t index, int type, __mmask16 mask) {
    switch (type) {
    case LORASTORE_ELEMENT_F32:
        return _mm512_maskz_loadu_ps(mask, (const float *)base + index);
    case LORASTORE_ELEMENT_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)base + index));
    default: {
        __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)base + index));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
    }
}

/// Sixteen F32 values rounded to BF16 (nearest even; NaN stays NaN, quietened) with integer arithmetic:
/// add 0x7FFF plus the kept low bit, keep the high half.
LORASTORE_INLINE __m256i bfloat16_rounded(__m512 value) {
    __m512i bits = _mm512_castps_si512(value);
    __m512i high = _mm512_srli_epi32(bits, 16);
    __m512i carry = _mm512_and_si512(high, _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), carry), 16);
    __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
    __mmask16 nan = _mm512_cmpgt_epi32_mask(magnitude, _mm512_set1_epi32(0x7F800000));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(high, _mm512_set1_epi32(0x40))));
}

/// The same rounding with `vcvtneps2bf16`, which is one instruction but treats F32 subnormal inputs as
/// zero; the rare vector holding one takes the integer path, so the bytes never differ.
LORASTORE_INLINE __m256i bfloat16_rounded_native(__m512 value) {
    if (_mm512_fpclass_ps_mask(value, FP_CLASS_SUBNORMAL) != 0) return bfloat16_rounded(value);
    return (__m256i)_mm512_cvtneps_pbh(value);
}

/// Rounds sixteen F32 values once into `type`, stores the lanes in `mask`, and adds to `nonfinite` the
/// lanes whose stored value is NaN or infinite (overflow when narrowing included).
LORASTORE_INLINE void store_lanes(
    void *output, size_t index, __m512 value, int type, int native_bf16, __mmask16 mask, __mmask16 *nonfinite
) {
    switch (type) {
    case LORASTORE_ELEMENT_F32:
        _mm512_mask_storeu_ps((float *)output + index, mask, value);
        *nonfinite |= _mm512_fpclass_ps_mask(value, FP_CLASS_NAN_OR_INFINITY);
        return;
    case LORASTORE_ELEMENT_F16: {
        __m256i narrowed = _mm512_cvtps_ph(value, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16((uint16_t *)output + index, mask, narrowed);
        __m256i exponent = _mm256_and_si256(narrowed, _mm256_set1_epi16(0x7C00));
        *nonfinite |= _mm256_cmpeq_epi16_mask(exponent, _mm256_set1_epi16(0x7C00));
        return;
    }
    default: {
        __m256i narrowed = native_bf16 ? bfloat16_rounded_native(value) : bfloat16_rounded(value);
        _mm256_mask_storeu_epi16((uint16_t *)output + index, mask, narrowed);
        __m256i exponent = _mm256_and_si256(narrowed, _mm256_set1_epi16(0x7F80));
        *nonfinite |= _mm256_cmpeq_epi16_mask(exponent, _mm256_set1_epi16(0x7F80));
        return;
    }
    }
}

/// The lanes of panel `chunk` that hold real columns.
LORASTORE_INLINE __mmask16 column_mask(const lorastore_merge_rows *plan, size_t chunk) {
    size_t width = plan->cols - chunk * LANES;
    return width >= LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
}

/// Merges a tile of `rows` rows × `chunks` panels (both compile-time constants after inlining, so the
/// accumulators live in registers), adding the lanes of non-finite stored values to `nonfinite`.
LORASTORE_INLINE void merge_tile(
    const lorastore_merge_rows *plan, size_t row, size_t chunk, const int rows, const int chunks,
    const int base_type, const int output_type, __mmask16 *nonfinite
) {
    const size_t rank = plan->rank;
    const float *left = plan->left + row * rank;
    const float *panel = plan->packed + chunk * rank * LANES;
    __m512 delta[TILE_ROWS][2];
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < chunks; j++) delta[i][j] = _mm512_setzero_ps();
    }
    for (size_t k = 0; k < rank; k++) {
        __m512 right[2];
        for (int j = 0; j < chunks; j++) right[j] = _mm512_loadu_ps(panel + (j * rank + k) * LANES);
        for (int i = 0; i < rows; i++) {
            __m512 factor = _mm512_set1_ps(left[i * rank + k]);
            for (int j = 0; j < chunks; j++) delta[i][j] = _mm512_fmadd_ps(factor, right[j], delta[i][j]);
        }
    }
    for (int j = 0; j < chunks; j++) {
        __mmask16 mask = column_mask(plan, chunk + j);
        for (int i = 0; i < rows; i++) {
            size_t index = (row + i) * plan->cols + (chunk + j) * LANES;
            __m512 sum = _mm512_add_ps(load_lanes(plan->base, index, base_type, mask), delta[i][j]);
            store_lanes(plan->output, index, sum, output_type, plan->native_bf16, mask, nonfinite);
        }
    }
}

/// Rows `row_start ..< row_end`, one block of `chunks_per_block` panels at a time (the block stays in
/// L1/L2 while the rows stream past), in tiles of eight rows × two panels.
LORASTORE_INLINE int merge_rows(
    const lorastore_merge_rows *plan, size_t row_start, size_t row_end, const int base_type, const int output_type
) {
    const size_t chunk_count = (plan->cols + LANES - 1) / LANES;
    const size_t per_block = plan->chunks_per_block > 0 ? plan->chunks_per_block : 1;
    __mmask16 nonfinite = 0;
    for (size_t block = 0; block < chunk_count; block += per_block) {
        const size_t block_end = block + per_block < chunk_count ? block + per_block : chunk_count;
        size_t row = row_start;
        for (; row + TILE_ROWS <= row_end; row += TILE_ROWS) {
            size_t chunk = block;
            for (; chunk + 2 <= block_end; chunk += 2) {
                merge_tile(plan, row, chunk, TILE_ROWS, 2, base_type, output_type, &nonfinite);
            }
            if (chunk < block_end) merge_tile(plan, row, chunk, TILE_ROWS, 1, base_type, output_type, &nonfinite);
        }
        for (; row < row_end; row++) {
            size_t chunk = block;
            for (; chunk + 2 <= block_end; chunk += 2) {
                merge_tile(plan, row, chunk, 1, 2, base_type, output_type, &nonfinite);
            }
            if (chunk < block_end) merge_tile(plan, row, chunk, 1, 1, base_type, output_type, &nonfinite);
        }
    }
    return nonfinite != 0;
}

/// One specialised loop per output type, for a given base type.
LORASTORE_INLINE int merge_rows_to(
    const lorastore_merge_rows *plan, size_t row_start, size_t row_end, const int base_type
) {
    switch (plan->output_type) {
    case LORASTORE_ELEMENT_F32: return merge_rows(plan, row_start, row_end, base_type, LORASTORE_ELEMENT_F32);
    case LORASTORE_ELEMENT_F16: return merge_rows(plan, row_start, row_end, base_type, LORASTORE_ELEMENT_F16);
    default: return merge_rows(plan, row_start, row_end, base_type, LORASTORE_ELEMENT_BF16);
    }
}

LORASTORE_AVX512 int lorastore_merge_rows_avx512(const lorastore_merge_rows *plan, size_t row_start, size_t row_end) {
    switch (plan->base_type) {
    case LORASTORE_ELEMENT_F32: return merge_rows_to(plan, row_start, row_end, LORASTORE_ELEMENT_F32);
    case LORASTORE_ELEMENT_F16: return merge_rows_to(plan, row_start, row_end, LORASTORE_ELEMENT_F16);
    default: return merge_rows_to(plan, row_start, row_end, LORASTORE_ELEMENT_BF16);
    }
}

LORASTORE_AVX512 float lorastore_fma_chains_avx512(size_t iterations) {
    enum { CHAINS = 12 };
    __m512 chains[CHAINS];
    for (int i = 0; i < CHAINS; i++) chains[i] = _mm512_set1_ps((float)i);
    const __m512 factor = _mm512_set1_ps(0.999f), addend = _mm512_set1_ps(0.001f);
    for (size_t round = 0; round < iterations; round++) {
        for (int i = 0; i < CHAINS; i++) chains[i] = _mm512_fmadd_ps(chains[i], factor, addend);
    }
    __m512 sum = chains[0];
    for (int i = 1; i < CHAINS; i++) sum = _mm512_add_ps(sum, chains[i]);
    return _mm512_reduce_add_ps(sum);
}

#else

int lorastore_avx512_available(void) { return 0; }

float lorastore_fma_chains_avx512(size_t iterations) {
    (void)iterations;
    return 0;
}

int lorastore_avx512_bf16_available(void) { return 0; }

int lorastore_merge_rows_avx512(const lorastore_merge_rows *plan, size_t row_start, size_t row_end) {
    (void)plan;
    (void)row_start;
    (void)row_end;
    return 0;
}

#endif
