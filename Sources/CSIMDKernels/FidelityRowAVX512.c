// The AVX-512 path of the fidelity measurement's row sums, chosen at run time by `FidelityMeasure` when the
// CPU has AVX-512. Eight Double lanes are one ZMM register here and two YMM registers in the portable Swift
// code; every lane does the same fused multiply-adds in the same order, and the lanes are added in the same
// order at the end, so both give the same bits.

#include "FidelityRow.h"

#if defined(__x86_64__)

#include <immintrin.h>

// `a += b * c` stays a multiply and an addition, as in Swift, which never fuses them on its own.
#pragma clang fp contract(off)

#define LORASTORE_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,fma")))
#define LANES 8

/// The eight lanes added from lane 0 up, one rounding per addition.
static inline LORASTORE_AVX512 double lanes_sum(__m512d value) {
    double lanes[LANES];
    _mm512_storeu_pd(lanes, value);
    double sum = lanes[0];
    for (int lane = 1; lane < LANES; lane++) sum += lanes[lane];
    return sum;
}

/// The eight F32 lanes added from lane 0 up.
static inline LORASTORE_AVX512 float float_lanes_sum(__m256 value) {
    float lanes[LANES];
    _mm256_storeu_ps(lanes, value);
    float sum = lanes[0];
    for (int lane = 1; lane < LANES; lane++) sum += lanes[lane];
    return sum;
}

/// Probes fed through the row at once.
#define PROBE_BLOCK 4

/// The probe sums of `count` probes from `first` (`count` is PROBE_BLOCK or 1, constant after inlining,
/// so the accumulators stay in registers), added to `sums` in probe order.
static inline __attribute__((always_inline)) LORASTORE_AVX512 void probe_block(
    const float *base, const float *delta, size_t groups, const float *inputs, const double *wide_inputs,
    size_t first, const size_t count, size_t padded, const double *widened, lorastore_row_sums *sums
) {
    __m512d error[PROBE_BLOCK], effect[PROBE_BLOCK], exact[PROBE_BLOCK];
    __m256 base_product[PROBE_BLOCK], delta_product[PROBE_BLOCK];
    for (size_t probe = 0; probe < count; probe++) {
        error[probe] = effect[probe] = exact[probe] = _mm512_setzero_pd();
        base_product[probe] = delta_product[probe] = _mm256_setzero_ps();
    }
    for (size_t group = 0; group < groups; group++) {
        const double *row = widened + 3 * LANES * group;
        const __m512d row_exact = _mm512_loadu_pd(row), row_error = _mm512_loadu_pd(row + LANES);
        const __m512d row_delta = _mm512_loadu_pd(row + 2 * LANES);
        const __m256 b = _mm256_loadu_ps(base + group * LANES), d = _mm256_loadu_ps(delta + group * LANES);
        for (size_t probe = 0; probe < count; probe++) {
            const size_t offset = (first + probe) * padded + group * LANES;
            const __m512d xd = _mm512_loadu_pd(wide_inputs + offset);
            exact[probe] = _mm512_fmadd_pd(xd, row_exact, exact[probe]);
            error[probe] = _mm512_fmadd_pd(xd, row_error, error[probe]);
            effect[probe] = _mm512_fmadd_pd(xd, row_delta, effect[probe]);
            const __m256 xc = _mm256_loadu_ps(inputs + offset);
            base_product[probe] = _mm256_fmadd_ps(xc, b, base_product[probe]);
            delta_product[probe] = _mm256_fmadd_ps(xc, d, delta_product[probe]);
        }
    }
    for (size_t probe = 0; probe < count; probe++) {
        // On the fly, as a runtime computes it: each product accumulated in F32, then added.
        const double on_the_fly =
            (double)(float_lanes_sum(base_product[probe]) + float_lanes_sum(delta_product[probe])) - lanes_sum(exact[probe]);
        const double error_sum = lanes_sum(error[probe]), effect_sum = lanes_sum(effect[probe]);
        sums->probe_error_squared += error_sum * error_sum;
        sums->probe_effect_squared += effect_sum * effect_sum;
        sums->on_the_fly_probe_error_squared += on_the_fly * on_the_fly;
    }
}

LORASTORE_AVX512 void lorastore_measure_row_avx512(
    const float *base, const float *delta, const float *output, size_t groups, const float *inputs,
    const double *wide_inputs, size_t probe_rows, size_t padded, double *widened, lorastore_row_sums *sums
) {
    __m512d error_squared = _mm512_setzero_pd(), delta_squared = _mm512_setzero_pd();
    __m512d survived_dot = _mm512_setzero_pd(), held_squared = _mm512_setzero_pd();
    for (size_t group = 0; group < groups; group++) {
        const __m256 b = _mm256_loadu_ps(base + group * LANES);
        const __m256 d = _mm256_loadu_ps(delta + group * LANES);
        const __m256 o = _mm256_loadu_ps(output + group * LANES);
        // `W_exact` rounded once to F32, then widened; the rest are exact in Double.
        const __m512d exact = _mm512_cvtps_pd(_mm256_add_ps(b, d));
        const __m512d wide_base = _mm512_cvtps_pd(b), wide_delta = _mm512_cvtps_pd(d), out = _mm512_cvtps_pd(o);
        const __m512d error = _mm512_sub_pd(out, exact);
        error_squared = _mm512_fmadd_pd(error, error, error_squared);
        delta_squared = _mm512_fmadd_pd(wide_delta, wide_delta, delta_squared);
        survived_dot = _mm512_fmadd_pd(_mm512_sub_pd(out, wide_base), wide_delta, survived_dot);
        const __m512d held = _mm512_sub_pd(_mm512_add_pd(wide_base, wide_delta), exact);
        held_squared = _mm512_fmadd_pd(held, held, held_squared);
        double *row = widened + 3 * LANES * group;
        _mm512_storeu_pd(row, exact);
        _mm512_storeu_pd(row + LANES, error);
        _mm512_storeu_pd(row + 2 * LANES, wide_delta);
    }
    sums->error_squared = lanes_sum(error_squared);
    sums->delta_squared = lanes_sum(delta_squared);
    sums->survived_dot = lanes_sum(survived_dot);
    sums->held_squared = lanes_sum(held_squared);
    sums->probe_error_squared = 0;
    sums->probe_effect_squared = 0;
    sums->on_the_fly_probe_error_squared = 0;
    // Probes in blocks of PROBE_BLOCK, each block one pass over the row: the widened values of a group are
    // loaded once for the block rather than once per probe (from L2 for wide rows, which bounded the
    // per-probe loop), while each probe's accumulators still take the groups in order.
    for (size_t first = 0; first < probe_rows; first += PROBE_BLOCK) {
        const size_t count = probe_rows - first < PROBE_BLOCK ? probe_rows - first : PROBE_BLOCK;
        if (count == PROBE_BLOCK) {
            probe_block(base, delta, groups, inputs, wide_inputs, first, PROBE_BLOCK, padded, widened, sums);
        } else {
            for (size_t input = first; input < first + count; input++) {
                probe_block(base, delta, groups, inputs, wide_inputs, input, 1, padded, widened, sums);
            }
        }
    }
}

#else

void lorastore_measure_row_avx512(
    const float *base, const float *delta, const float *output, size_t groups, const float *inputs,
    const double *wide_inputs, size_t probe_rows, size_t padded, double *widened, lorastore_row_sums *sums
) {
    (void)base; (void)delta; (void)output; (void)groups; (void)inputs; (void)wide_inputs;
    (void)probe_rows; (void)padded; (void)widened; (void)sums;
}

#endif
