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

/// Rows of the AVX-512 kernel's register tiles: a task's packed left factor holds whole groups of them.
enum { LORASTORE_AVX512_TILE_ROWS = 8 };

/// One part of the left factor, `scale · left`, with `left` a `rows × rank` row-major F32 matrix.
typedef struct {
    const float *left;
    size_t rank;
    float scale;
} lorastore_left_part;

/// One merge pass over a block of rows: `output = round(base + left · packed)`.
///
/// The left factor is `parts` side by side (their ranks sum to `rank`), each multiplied by its scale;
/// `packed` holds the `rank × cols` right factor in 16-column panels (panel `c` is
/// `right[k, 16c ..< 16c+16]` for `k = 0 ..< rank`, zero-padded past `cols`). Rows are swept
/// `chunks_per_block` panels at a time.
typedef struct {
    const void *base;
    void *output;
    const lorastore_left_part *parts;
    size_t part_count;
    const float *packed;
    size_t cols;
    size_t rank;
    size_t chunks_per_block;
    int base_type;
    int output_type;
    /// Round to BF16 with `vcvtneps2bf16` (set only where `lorastore_avx512_bf16_available()` is 1).
    int native_bf16;
    /// 1 when the deltas `left · packed` are bounded by `Σ |scale| · rank · max|left| · max|right| < 2^100`,
    /// so each computed one is far below 2^119 whatever its rounding. A BF16 or F16 base weight is at most
    /// 0x7F7F as a BF16 (the largest finite one), 2^119 below the smallest F32 that rounds to a BF16
    /// infinity, so with such deltas a finite sum cannot round to infinity and the kernel may find
    /// non-finite BF16 outputs from the F32 sums' classes alone.
    int bounded_delta;
    /// 1 to write whole vectors at aligned addresses (64 bytes, or 32 for sixteen 16-bit values) with
    /// non-temporal stores, which skip reading each output line before overwriting it; for outputs too
    /// large to be read back from the caches anyway.
    int streaming_stores;
} lorastore_merge_rows;

/// Merges rows `row_start ..< row_end` with AVX-512, element by element exactly as the portable Swift
/// kernel does (each left value times its part's scale, then F32 fused multiply-adds from zero in
/// increasing `k`, one addition of the widened base, one rounding to nearest even). `scratch` receives the
/// rows' scaled left values packed for the tiles: at least `rank` times the row count rounded up to
/// `LORASTORE_AVX512_TILE_ROWS` floats, one buffer per concurrent call. Returns 1 when any written value
/// is NaN or infinite, else 0. Call only when `lorastore_avx512_available()` returned 1.
int lorastore_merge_rows_avx512(const lorastore_merge_rows *plan, size_t row_start, size_t row_end, float *scratch);

/// The largest magnitude among `count` floats, NaN ignored: what `bounded_delta` is computed from. Call
/// only when `lorastore_avx512_available()` returned 1.
float lorastore_largest_magnitude_avx512(const float *values, size_t count);

/// Runs `iterations` rounds of twelve independent 16-lane F32 fused multiply-adds (the kernel's instruction,
/// without its memory traffic) and returns a value that depends on all of them: benchmarks time it to know
/// the multiply-add throughput a merge is bound by. Call only when `lorastore_avx512_available()` is 1.
float lorastore_fma_chains_avx512(size_t iterations);

#endif
