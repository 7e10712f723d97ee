#ifndef LORASTORE_FIDELITY_ROW_H
#define LORASTORE_FIDELITY_ROW_H

#include <stddef.h>

/// The sums of one row of a fidelity measurement (see `FidelityMeasure` in Swift).
typedef struct {
    double error_squared;
    double delta_squared;
    double survived_dot;
    double held_squared;
    double probe_error_squared;
    double probe_effect_squared;
    double on_the_fly_probe_error_squared;
} lorastore_row_sums;

/// Measures one row with AVX-512, value for value as the portable Swift code does: `base`, `delta` and
/// `output` hold `groups` groups of eight F32 columns (zero-padded), `inputs` and `wide_inputs` the probe
/// rows (`probe_rows` rows of `padded` values, F32 and widened to Double), and `widened` receives
/// `3 · 8 · groups` doubles per row (for each group: `W_exact`, the output's difference from it, `Δ`).
/// Each quantity is accumulated with fused multiply-adds in eight Double lanes (column mod 8), added in
/// lane order at the end; the F32 probe products in eight F32 lanes, likewise. Call only when
/// `lorastore_avx512_available()` returned 1.
void lorastore_measure_row_avx512(
    const float *base, const float *delta, const float *output, size_t groups, const float *inputs,
    const double *wide_inputs, size_t probe_rows, size_t padded, double *widened, lorastore_row_sums *sums);

#endif
