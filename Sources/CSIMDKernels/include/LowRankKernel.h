#ifndef LORASTORE_LOW_RANK_KERNEL_H
#define LORASTORE_LOW_RANK_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/// Element types the kernel reads and writes (the raw values of `LowRankKernelElement` in Swift).
enum {
    LORASTORE_ELEMENT_F32 = 0,
    LORASTORE_ELEMENT_F16 = 1,
    LORASTORE_ELEMENT_BF16 = 2,
};

/// One merge pass over a block of rows: `output = round(base + left · packed)`.
///
/// `left` is `rows × rank` row-major F32; `packed` holds the `rank × cols` right factor in 16-column
/// panels (panel `c` is `right[k, 16c ..< 16c+16]` for `k = 0 ..< rank`, zero-padded past `cols`).
/// Rows `row_start ..< row_end` are merged, sweeping `chunks_per_block` panels at a time.
typedef struct {
    const void *base;
    void *output;
    const float *left;
    const float *packed;
    size_t cols;
    size_t rank;
    size_t chunks_per_block;
    int base_type;
    int output_type;
    /// Round to BF16 with `vcvtneps2bf16` (set only where `lorastore_avx512_bf16_available()` is 1).
    int native_bf16;
} lorastore_merge_rows;

/// Merges rows `row_start ..< row_end` with AVX-512, element by element exactly as the portable Swift
/// kernel does (F32 fused multiply-adds from zero in increasing `k`, one addition of the widened base,
/// one rounding to nearest even). Returns 1 when any written value is NaN or infinite, else 0.
/// Call only when `lorastore_avx512_available()` returned 1.
int lorastore_merge_rows_avx512(const lorastore_merge_rows *plan, size_t row_start, size_t row_end);

/// Runs `iterations` rounds of twelve independent 16-lane F32 fused multiply-adds (the kernel's instruction,
/// without its memory traffic) and returns a value that depends on all of them: benchmarks time it to know
/// the multiply-add throughput a merge is bound by. Call only when `lorastore_avx512_available()` is 1.
float lorastore_fma_chains_avx512(size_t iterations);

#endif
