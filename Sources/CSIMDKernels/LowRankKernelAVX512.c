// The AVX-512 merge kernel, chosen at run time by `LowRankKernel` when the CPU has AVX-512.
//
// Swift compiles the whole package for one CPU level (Haswell: AVX2 and FMA), so 512-bit code has to come
// from functions that carry their own target attribute and are only called after a CPUID check. Every
// element gets exactly the arithmetic of the portable Swift kernel: the delta accumulated from zero with
// F32 fused multiply-adds in increasing k (each left value multiplied by its part's scale first), one F32
// addition of the widened base, one rounding to nearest even into the output type. The outputs of the two
// kernels are therefore byte-identical.

#include "LowRankKernel.h"

#if defined(__x86_64__)

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
#define TILE_ROWS LORASTORE_AVX512_TILE_ROWS

/// How far ahead of a tile, in bytes along each of its rows, the kernel asks for an F32 base: four tiles.
/// A tile's eight rows are a weight row apart (8 KiB for 2048 columns), and the hardware prefetchers follow
/// a stream only within a 4 KiB page, so without this each row restarts one every 32 tiles. Measured in a
/// C probe on this kernel (800 MB of weights, 2 threads, streaming stores, AMD EPYC Zen 5, best of 7,
/// without and with it alternated; distances 256 to 2048 tried, 512 best), F32 rank × columns:
/// 16 × 5632 22.0 → 18.2 ms, 16 × 2048 25.3 → 21.7 ms, 8 × 2048 24.1 → 20.8 ms, 64 × 2048 61.7 → 58.7 ms,
/// 16 × 256 57.4 → 42.0 ms. A 16-bit base is left to the hardware: BF16 rank 16 × 5632 went 32.0 → 33.6 ms
/// with it (that merge is bound by its multiply-adds, which the extra loads only delay).
#define PREFETCH_BYTES 512

/// Fully unrolls a loop over a tile's rows or panels. The accumulators and base vectors are arrays indexed
/// by those loops; clang leaves the larger loops (the rounding has a rare branch per row) rolled, and then
/// the arrays live on the stack: every tile stores and reloads its sixteen accumulators.
#define UNROLLED _Pragma("clang loop unroll(full)")

/// Sixteen 16-bit elements widened to F32.
LORASTORE_INLINE __m512 widen_halves(__m256i halves, int type) {
    if (type == LORASTORE_ELEMENT_F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

/// Loads sixteen elements (the lanes in `mask`, zero elsewhere) widened to F32.
LORASTORE_INLINE __m512 load_lanes(const void *base, size_t index, int type, __mmask16 mask) {
    if (type == LORASTORE_ELEMENT_F32) return _mm512_maskz_loadu_ps(mask, (const float *)base + index);
    return widen_halves(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)base + index), type);
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

/// Whether `address` starts a `bytes`-aligned block, as a non-temporal store needs.
LORASTORE_INLINE int is_aligned(const void *address, uintptr_t bytes) {
    return ((uintptr_t)address & (bytes - 1)) == 0;
}

/// Rounds sixteen F32 values once into `type`, stores the lanes in `mask` (all of them with a non-temporal
/// store when `streaming` and the address allows), and returns the lanes whose stored value is NaN or
/// infinite (overflow when narrowing included).
LORASTORE_INLINE __mmask16 store_lanes(
    void *output, size_t index, __m512 value, int type, int native_bf16, int streaming, __mmask16 mask
) {
    if (type == LORASTORE_ELEMENT_F32) {
        float *destination = (float *)output + index;
        if (streaming && mask == 0xFFFF && is_aligned(destination, 64)) {
            _mm512_stream_ps(destination, value);
        } else {
            _mm512_mask_storeu_ps(destination, mask, value);
        }
        return _mm512_fpclass_ps_mask(value, FP_CLASS_NAN_OR_INFINITY);
    }
    __m256i narrowed;
    __m256i exponent_bits;
    if (type == LORASTORE_ELEMENT_F16) {
        narrowed = _mm512_cvtps_ph(value, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        exponent_bits = _mm256_set1_epi16(0x7C00);
    } else {
        narrowed = native_bf16 ? bfloat16_rounded_native(value) : bfloat16_rounded(value);
        exponent_bits = _mm256_set1_epi16(0x7F80);
    }
    uint16_t *destination = (uint16_t *)output + index;
    if (streaming && mask == 0xFFFF && is_aligned(destination, 32)) {
        _mm256_stream_si256((__m256i *)destination, narrowed);
    } else {
        _mm256_mask_storeu_epi16(destination, mask, narrowed);
    }
    return _mm256_mask_cmpeq_epi16_mask(mask, _mm256_and_si256(narrowed, exponent_bits), exponent_bits);
}

/// Copies rows `row_start ..< row_end` of the scaled left factor into `packed`, k-major in groups of
/// TILE_ROWS rows: row `row_start + TILE_ROWS·g + i`, inner index `k` goes to
/// `packed[(g·rank + k)·TILE_ROWS + i]`. A tile then finds its rows' values for one `k` side by side, at
/// offsets that are constants in its loop, instead of `rank` floats apart.
LORASTORE_INLINE void pack_left(const lorastore_merge_rows *plan, size_t row_start, size_t row_end, float *packed) {
    const size_t rank = plan->rank;
    for (size_t row = row_start; row < row_end; row++) {
        const size_t offset = row - row_start;
        float *destination = packed + (offset / TILE_ROWS) * rank * TILE_ROWS + offset % TILE_ROWS;
        size_t first = 0;
        for (size_t index = 0; index < plan->part_count; index++) {
            const lorastore_left_part part = plan->parts[index];
            const float *values = part.left + row * part.rank;
            for (size_t k = 0; k < part.rank; k++) destination[(first + k) * TILE_ROWS] = part.scale * values[k];
            first += part.rank;
        }
    }
}

/// Merges a tile of `rows` rows × `chunks` panels starting at `row`, `chunk` (`rows`, `chunks` and the
/// types are compile-time constants after inlining, so the accumulators live in registers) and returns the
/// lanes of non-finite stored values. `left` is the tile's first row in the packed left factor (its values
/// for one `k` are TILE_ROWS floats apart). `masks` are the panels' real columns; `full` says both are
/// complete.
LORASTORE_INLINE uint32_t merge_tile(
    const lorastore_merge_rows source, const float *left, size_t row, size_t chunk, const int rows, const int chunks,
    const int base_type, const int output_type, const int native_bf16, const int full, const __mmask16 masks[2]
) {
    const size_t rank = source.rank;
    const float *panel = source.packed + chunk * rank * LANES;
    if (base_type == LORASTORE_ELEMENT_F32) {
        UNROLLED
        for (int i = 0; i < rows; i++) {
            // An address, not a pointer into the weight: past its end a prefetch never faults, merely wastes.
            const uintptr_t ahead =
                (uintptr_t)((const float *)source.base + (row + i) * source.cols + chunk * LANES) + PREFETCH_BYTES;
            _mm_prefetch((const char *)ahead, _MM_HINT_T0);
            if (chunks == 2) _mm_prefetch((const char *)(ahead + 64), _MM_HINT_T0);
        }
    }
    __m512 delta[TILE_ROWS][2];
    UNROLLED
    for (int i = 0; i < rows; i++) {
        UNROLLED
        for (int j = 0; j < chunks; j++) delta[i][j] = _mm512_setzero_ps();
    }
    for (size_t k = 0; k < rank; k++) {
        __m512 right[2];
        UNROLLED
        for (int j = 0; j < chunks; j++) right[j] = _mm512_loadu_ps(panel + (j * rank + k) * LANES);
        UNROLLED
        for (int i = 0; i < rows; i++) {
            __m512 factor = _mm512_set1_ps(left[k * TILE_ROWS + i]);
            UNROLLED
            for (int j = 0; j < chunks; j++) delta[i][j] = _mm512_fmadd_ps(factor, right[j], delta[i][j]);
        }
    }
    uint32_t nonfinite = 0;
    if (full && chunks == 2 && base_type != LORASTORE_ELEMENT_F32 && output_type == LORASTORE_ELEMENT_BF16 && native_bf16) {
        // Both panels of a row round in one instruction after one look at the sums' classes: F32
        // subnormals, which that instruction flushes, take the integer rounding. With a bounded delta a
        // finite sum cannot round to infinity (see `bounded_delta`), so NaN and infinity are read from the
        // same classes instead of from the stored values.
        const int bounded = source.bounded_delta;
        UNROLLED
        for (int i = 0; i < rows; i++) {
            const size_t index = (row + i) * source.cols + chunk * LANES;
            const __m256i *halves = (const __m256i *)((const uint16_t *)source.base + index);
            __m512 low = _mm512_add_ps(widen_halves(_mm256_loadu_si256(halves), base_type), delta[i][0]);
            __m512 high = _mm512_add_ps(widen_halves(_mm256_loadu_si256(halves + 1), base_type), delta[i][1]);
            __mmask16 unusual = bounded
                ? _mm512_fpclass_ps_mask(low, FP_CLASS_SUBNORMAL | FP_CLASS_NAN_OR_INFINITY)
                    | _mm512_fpclass_ps_mask(high, FP_CLASS_SUBNORMAL | FP_CLASS_NAN_OR_INFINITY)
                : _mm512_fpclass_ps_mask(low, FP_CLASS_SUBNORMAL) | _mm512_fpclass_ps_mask(high, FP_CLASS_SUBNORMAL);
            const __m512i exponent_bits = _mm512_set1_epi16(0x7F80);
            __m512i narrowed;
            if (unusual == 0) {
                narrowed = (__m512i)_mm512_cvtne2ps_pbh(high, low);
                if (!bounded) {
                    nonfinite |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(narrowed, exponent_bits), exponent_bits);
                }
            } else {
                narrowed = _mm512_inserti64x4(_mm512_castsi256_si512(bfloat16_rounded(low)), bfloat16_rounded(high), 1);
                nonfinite |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(narrowed, exponent_bits), exponent_bits);
            }
            uint16_t *destination = (uint16_t *)source.output + index;
            if (source.streaming_stores && is_aligned(destination, 64)) {
                _mm512_stream_si512((void *)destination, narrowed);
            } else {
                _mm512_storeu_si512(destination, narrowed);
            }
        }
        return nonfinite;
    }
    UNROLLED
    for (int i = 0; i < rows; i++) {
        UNROLLED
        for (int j = 0; j < chunks; j++) {
            size_t index = (row + i) * source.cols + (chunk + j) * LANES;
            __m512 sum = _mm512_add_ps(load_lanes(source.base, index, base_type, masks[j]), delta[i][j]);
            nonfinite |= store_lanes(
                source.output, index, sum, output_type, native_bf16, source.streaming_stores, masks[j]);
        }
    }
    return nonfinite;
}

/// Rows `row_start ..< row_end`, one block of `chunks_per_block` panels at a time (the block stays in
/// L1/L2 while the rows stream past), in tiles of eight rows × two panels; `left` is the rows' packed left
/// factor (`pack_left`).
LORASTORE_INLINE int merge_rows(
    const lorastore_merge_rows *plan, const float *left, size_t row_start, size_t row_end, const int base_type,
    const int output_type, const int native_bf16
) {
    // The tiles read a copy of the plan, held in registers: their 16-bit stores may alias anything reached
    // through a pointer, so reading the plan through one would reload every field after every store.
    const lorastore_merge_rows source = *plan;
    const size_t chunk_count = (source.cols + LANES - 1) / LANES;
    const size_t full_chunks = source.cols / LANES;
    const __mmask16 all[2] = {0xFFFF, 0xFFFF};
    const int tile = TILE_ROWS;
    const __mmask16 ragged[2] = {(__mmask16)((1u << (source.cols % LANES)) - 1), 0};
    const size_t per_block = source.chunks_per_block > 0 ? source.chunks_per_block : 1;
    uint32_t nonfinite = 0;
    for (size_t block = 0; block < chunk_count; block += per_block) {
        const size_t block_end = block + per_block < chunk_count ? block + per_block : chunk_count;
        const size_t block_full = block_end < full_chunks ? block_end : full_chunks;
        size_t row = row_start;
        for (; row + TILE_ROWS <= row_end; row += TILE_ROWS) {
            const float *tile_left = left + (row - row_start) * source.rank;
            size_t chunk = block;
            for (; chunk + 2 <= block_full; chunk += 2) {
                nonfinite |= merge_tile(
                    source, tile_left, row, chunk, tile, 2, base_type, output_type, native_bf16, 1, all);
            }
            for (; chunk < block_end; chunk++) {
                const __mmask16 *masks = chunk < full_chunks ? all : ragged;
                nonfinite |= merge_tile(
                    source, tile_left, row, chunk, tile, 1, base_type, output_type, native_bf16, 0, masks);
            }
        }
        for (; row < row_end; row++) {
            const size_t offset = row - row_start;
            const float *tile_left = left + (offset - offset % TILE_ROWS) * source.rank + offset % TILE_ROWS;
            size_t chunk = block;
            for (; chunk + 2 <= block_full; chunk += 2) {
                nonfinite |= merge_tile(
                    source, tile_left, row, chunk, 1, 2, base_type, output_type, native_bf16, 1, all);
            }
            for (; chunk < block_end; chunk++) {
                const __mmask16 *masks = chunk < full_chunks ? all : ragged;
                nonfinite |= merge_tile(
                    source, tile_left, row, chunk, 1, 1, base_type, output_type, native_bf16, 0, masks);
            }
        }
    }
    return nonfinite != 0;
}

/// One specialised loop per output type (and BF16 rounding), for a given base type.
LORASTORE_INLINE int merge_rows_to(
    const lorastore_merge_rows *plan, const float *left, size_t row_start, size_t row_end, const int base_type
) {
    switch (plan->output_type) {
    case LORASTORE_ELEMENT_F32: return merge_rows(plan, left, row_start, row_end, base_type, LORASTORE_ELEMENT_F32, 0);
    case LORASTORE_ELEMENT_F16: return merge_rows(plan, left, row_start, row_end, base_type, LORASTORE_ELEMENT_F16, 0);
    default:
        if (plan->native_bf16) return merge_rows(plan, left, row_start, row_end, base_type, LORASTORE_ELEMENT_BF16, 1);
        return merge_rows(plan, left, row_start, row_end, base_type, LORASTORE_ELEMENT_BF16, 0);
    }
}

LORASTORE_AVX512 int lorastore_merge_rows_avx512(
    const lorastore_merge_rows *plan, size_t row_start, size_t row_end, float *scratch
) {
    pack_left(plan, row_start, row_end, scratch);
    int nonfinite;
    switch (plan->base_type) {
    case LORASTORE_ELEMENT_F32: nonfinite = merge_rows_to(plan, scratch, row_start, row_end, LORASTORE_ELEMENT_F32); break;
    case LORASTORE_ELEMENT_F16: nonfinite = merge_rows_to(plan, scratch, row_start, row_end, LORASTORE_ELEMENT_F16); break;
    default: nonfinite = merge_rows_to(plan, scratch, row_start, row_end, LORASTORE_ELEMENT_BF16);
    }
    // Non-temporal stores are weakly ordered: make them visible before the caller reports the rows done.
    if (plan->streaming_stores) _mm_sfence();
    return nonfinite;
}

LORASTORE_AVX512 float lorastore_largest_magnitude_avx512(const float *values, size_t count) {
    // `vmaxps` returns its second operand when either is NaN, so the running maximum skips NaN lanes.
    __m512 largest = _mm512_setzero_ps();
    size_t index = 0;
    for (; index + LANES <= count; index += LANES) {
        largest = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(values + index)), largest);
    }
    const __mmask16 tail = (__mmask16)((1u << (count - index)) - 1);
    largest = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail, values + index)), largest);
    return _mm512_reduce_max_ps(largest);
}

LORASTORE_AVX512 float lorastore_fma_chains_avx512(size_t iterations) {
    enum { CHAINS = 12 };
    __m512 chains[CHAINS];
    // Starting values away from 1, the fixed point of x·0.999 + 0.001, which the compiler would fold away.
    for (int i = 0; i < CHAINS; i++) chains[i] = _mm512_set1_ps((float)(i + 2));
    const __m512 factor = _mm512_set1_ps(0.999f), addend = _mm512_set1_ps(0.001f);
    for (size_t round = 0; round < iterations; round++) {
        for (int i = 0; i < CHAINS; i++) chains[i] = _mm512_fmadd_ps(chains[i], factor, addend);
    }
    __m512 sum = chains[0];
    for (int i = 1; i < CHAINS; i++) sum = _mm512_add_ps(sum, chains[i]);
    return _mm512_reduce_add_ps(sum);
}

#else

float lorastore_largest_magnitude_avx512(const float *values, size_t count) {
    (void)values;
    (void)count;
    return 0;
}

float lorastore_fma_chains_avx512(size_t iterations) {
    (void)iterations;
    return 0;
}

int lorastore_merge_rows_avx512(const lorastore_merge_rows *plan, size_t row_start, size_t row_end, float *scratch) {
    (void)plan;
    (void)row_start;
    (void)row_end;
    (void)scratch;
    return 0;
}

#endif
