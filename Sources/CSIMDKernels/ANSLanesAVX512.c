// The AVX-512 decoder of `ANSLanes`, chosen at run time when the CPU has AVX-512 VBMI2.
//
// The 64 lanes sit in four registers of sixteen. Per register and step: every lane gathers its table entry,
// lanes whose container holds fewer bits than the entry reads take the next words of the stream in lane
// order (one expanding load), and every lane reads the entry's bit count from the top of its unread bits,
// emits the entry's value with the escaped low bits of the field, and moves to the entry's base plus the
// rest of the field. The four registers' chains are independent, so the gathers of one overlap the
// arithmetic of the others. It computes exactly what the portable Swift decoder does, lane by lane.

#include "ANSLanes.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define LORASTORE_AVX512_VBMI2 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi2,popcnt")))

/// Lanes per register, and registers per step.
#define LANES 16
#define REGISTERS 4

LORASTORE_AVX512_VBMI2 size_t lorastore_ans_lanes_decode_avx512(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps
) {
    __m512i states[REGISTERS], containers[REGISTERS], fills[REGISTERS];
    for (int r = 0; r < REGISTERS; r++) {
        states[r] = _mm512_loadu_si512(state + LANES * r);
        containers[r] = _mm512_loadu_si512(container + LANES * r);
        fills[r] = _mm512_loadu_si512(filled + LANES * r);
    }
    const __m512i sixteen = _mm512_set1_epi32(16), thirty_two = _mm512_set1_epi32(32);
    const __m512i read_mask = _mm512_set1_epi32(0x1F), escape_mask = _mm512_set1_epi32(0x7);
    const __m512i base_mask = _mm512_set1_epi32(0xFFF), all_ones = _mm512_set1_epi32(-1);
    size_t next = *word_index;
    size_t done = 0;
    // A step takes at most one word per lane.
    for (; done < steps && word_count - next >= LANES * REGISTERS; done++) {
        uint16_t *out = symbols + done * LANES * REGISTERS;
        for (int r = 0; r < REGISTERS; r++) {
            // Entry: next-state base (bits 0-11), bits to read (12-16), escaped bits (17-19), value (20-31).
            const __m512i entry = _mm512_i32gather_epi32(states[r], (const void *)table, 4);
            const __m512i bits = _mm512_and_si512(_mm512_srli_epi32(entry, 12), read_mask);
            const __m512i escape_bits = _mm512_and_si512(_mm512_srli_epi32(entry, 17), escape_mask);

            const __mmask16 short_of_bits = _mm512_cmplt_epu32_mask(fills[r], bits);
            const __m512i word = _mm512_cvtepu16_epi32(_mm256_maskz_expandloadu_epi16(short_of_bits, words + next));
            next += (size_t)__builtin_popcount(short_of_bits);
            containers[r] = _mm512_or_si512(
                _mm512_mask_slli_epi32(containers[r], short_of_bits, containers[r], 16), word);
            fills[r] = _mm512_mask_add_epi32(fills[r], short_of_bits, fills[r], sixteen);

            // The top `bits` of the `fills` unread bits; shifts of 32 give 0, so a 0-bit read gives 0.
            const __m512i unread = _mm512_sllv_epi32(containers[r], _mm512_sub_epi32(thirty_two, fills[r]));
            const __m512i field = _mm512_srlv_epi32(unread, _mm512_sub_epi32(thirty_two, bits));
            fills[r] = _mm512_sub_epi32(fills[r], bits);
            states[r] = _mm512_add_epi32(_mm512_and_si512(entry, base_mask), _mm512_srlv_epi32(field, escape_bits));
            // value | (field & ~(all_ones << escape_bits))
            const __m512i symbol = _mm512_ternarylogic_epi32(
                _mm512_srli_epi32(entry, 20), field, _mm512_sllv_epi32(all_ones, escape_bits), 0xF4);
            _mm256_storeu_si256((__m256i *)(out + LANES * r), _mm512_cvtepi32_epi16(symbol));
        }
    }
    for (int r = 0; r < REGISTERS; r++) {
        _mm512_storeu_si512(state + LANES * r, states[r]);
        _mm512_storeu_si512(container + LANES * r, containers[r]);
        _mm512_storeu_si512(filled + LANES * r, fills[r]);
    }
    *word_index = next;
    return done;
}

#else

size_t lorastore_ans_lanes_decode_avx512(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps
) {
    (void)state, (void)container, (void)filled, (void)words, (void)word_count, (void)word_index, (void)table;
    (void)symbols, (void)steps;
    return 0;
}

#endif
