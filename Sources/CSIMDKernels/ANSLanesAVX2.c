// The AVX2 decoder of `ANSLanes`, for x86_64 CPUs without AVX-512 VBMI2.
//
// The same steps as the AVX-512 decoder, eight lanes per register in eight registers. AVX2 has no expanding
// load, so a register loads the next eight words and moves the first ones into the lanes short of bits with
// one permutation, whose indices come from a table by the lanes' mask. It computes exactly what the portable
// Swift decoder does, lane by lane.

#include "ANSLanes.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define LORASTORE_AVX2 __attribute__((target("avx2,popcnt")))

/// Lanes per register, and registers per step.
#define LANES 8
#define REGISTERS 8

/// For a mask of lanes, the byte `i` of its entry is the index among the loaded words of the word lane `i`
/// takes: the number of lanes below `i` in the mask.
#define WORD_INDEX(mask, lane) ((uint64_t)__builtin_popcount((mask) & ((1u << (lane)) - 1)) << (8 * (lane)))
#define EXPAND_ENTRY(mask)                                                                                     \
    (WORD_INDEX(mask, 0) | WORD_INDEX(mask, 1) | WORD_INDEX(mask, 2) | WORD_INDEX(mask, 3) |                   \
     WORD_INDEX(mask, 4) | WORD_INDEX(mask, 5) | WORD_INDEX(mask, 6) | WORD_INDEX(mask, 7))
#define EXPAND_ROW(first)                                                                                      \
    EXPAND_ENTRY(first + 0), EXPAND_ENTRY(first + 1), EXPAND_ENTRY(first + 2), EXPAND_ENTRY(first + 3),        \
    EXPAND_ENTRY(first + 4), EXPAND_ENTRY(first + 5), EXPAND_ENTRY(first + 6), EXPAND_ENTRY(first + 7),        \
    EXPAND_ENTRY(first + 8), EXPAND_ENTRY(first + 9), EXPAND_ENTRY(first + 10), EXPAND_ENTRY(first + 11),      \
    EXPAND_ENTRY(first + 12), EXPAND_ENTRY(first + 13), EXPAND_ENTRY(first + 14), EXPAND_ENTRY(first + 15)

static const uint64_t expand_indices[256] = {
    EXPAND_ROW(0), EXPAND_ROW(16), EXPAND_ROW(32), EXPAND_ROW(48), EXPAND_ROW(64), EXPAND_ROW(80),
    EXPAND_ROW(96), EXPAND_ROW(112), EXPAND_ROW(128), EXPAND_ROW(144), EXPAND_ROW(160), EXPAND_ROW(176),
    EXPAND_ROW(192), EXPAND_ROW(208), EXPAND_ROW(224), EXPAND_ROW(240),
};

LORASTORE_AVX2 size_t lorastore_ans_lanes_decode_avx2(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps
) {
    __m256i states[REGISTERS], containers[REGISTERS], fills[REGISTERS];
    for (int r = 0; r < REGISTERS; r++) {
        states[r] = _mm256_loadu_si256((const __m256i *)(state + LANES * r));
        containers[r] = _mm256_loadu_si256((const __m256i *)(container + LANES * r));
        fills[r] = _mm256_loadu_si256((const __m256i *)(filled + LANES * r));
    }
    const __m256i sixteen = _mm256_set1_epi32(16), thirty_two = _mm256_set1_epi32(32);
    const __m256i read_mask = _mm256_set1_epi32(0x1F), escape_mask = _mm256_set1_epi32(0x7);
    const __m256i base_mask = _mm256_set1_epi32(0xFFF), all_ones = _mm256_set1_epi32(-1);
    size_t next = *word_index;
    size_t done = 0;
    // A step takes at most one word per lane, and a register loads eight words past its first: while a
    // whole step's words remain, every load is in bounds.
    for (; done < steps && word_count - next >= LANES * REGISTERS; done++) {
        uint16_t *out = symbols + done * LANES * REGISTERS;
        for (int r = 0; r < REGISTERS; r++) {
            // Entry: next-state base (bits 0-11), bits to read (12-16), escaped bits (17-19), value (20-31).
            const __m256i entry = _mm256_i32gather_epi32((const int *)table, states[r], 4);
            const __m256i bits = _mm256_and_si256(_mm256_srli_epi32(entry, 12), read_mask);
            const __m256i escape_bits = _mm256_and_si256(_mm256_srli_epi32(entry, 17), escape_mask);

            const __m256i short_of_bits = _mm256_cmpgt_epi32(bits, fills[r]);
            const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(short_of_bits));
            const __m256i loaded = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(words + next)));
            const __m256i indices = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)expand_indices[mask]));
            const __m256i word = _mm256_and_si256(_mm256_permutevar8x32_epi32(loaded, indices), short_of_bits);
            next += (size_t)__builtin_popcount((unsigned)mask);
            const __m256i refilled = _mm256_or_si256(_mm256_slli_epi32(containers[r], 16), word);
            containers[r] = _mm256_blendv_epi8(containers[r], refilled, short_of_bits);
            fills[r] = _mm256_add_epi32(fills[r], _mm256_and_si256(short_of_bits, sixteen));

            // The top `bits` of the `fills` unread bits; shifts of 32 give 0, so a 0-bit read gives 0.
            const __m256i unread = _mm256_sllv_epi32(containers[r], _mm256_sub_epi32(thirty_two, fills[r]));
            const __m256i field = _mm256_srlv_epi32(unread, _mm256_sub_epi32(thirty_two, bits));
            fills[r] = _mm256_sub_epi32(fills[r], bits);
            states[r] = _mm256_add_epi32(_mm256_and_si256(entry, base_mask), _mm256_srlv_epi32(field, escape_bits));
            const __m256i escaped = _mm256_andnot_si256(_mm256_sllv_epi32(all_ones, escape_bits), field);
            const __m256i symbol = _mm256_or_si256(_mm256_srli_epi32(entry, 20), escaped);
            const __m128i packed =
                _mm_packus_epi32(_mm256_castsi256_si128(symbol), _mm256_extracti128_si256(symbol, 1));
            _mm_storeu_si128((__m128i *)(out + LANES * r), packed);
        }
    }
    for (int r = 0; r < REGISTERS; r++) {
        _mm256_storeu_si256((__m256i *)(state + LANES * r), states[r]);
        _mm256_storeu_si256((__m256i *)(container + LANES * r), containers[r]);
        _mm256_storeu_si256((__m256i *)(filled + LANES * r), fills[r]);
    }
    *word_index = next;
    return done;
}

#else

size_t lorastore_ans_lanes_decode_avx2(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps
) {
    (void)state, (void)container, (void)filled, (void)words, (void)word_count, (void)word_index, (void)table;
    (void)symbols, (void)steps;
    return 0;
}

#endif
