#ifndef LORASTORE_ANS_LANES_H
#define LORASTORE_ANS_LANES_H

#include <stddef.h>
#include <stdint.h>

/// Decodes whole steps of the 64-lane tANS format (`ANSLanes` in Swift) with AVX-512: in one step, lane
/// `l` (in increasing order) first takes the next 16-bit word of the shared stream into its container if the
/// container holds fewer bits than its state reads, then reads them from the top of its unread bits: the
/// escaped low bits of its symbol below the offset of its next state.
///
/// `state`, `container` and `filled` hold the 64 lanes' decoder states, containers and unread bit counts,
/// read on entry and written back on return; `symbols` receives step `s`'s 64 symbols at `64 · s`. Runs at most `steps` steps and stops early before a step that
/// could need more than the `word_count - *word_index` words left, so it never reads outside `words`; the
/// caller finishes with the portable decoder. Returns the steps decoded and advances `*word_index`.
///
/// Every table entry must keep the next state below 4096 (`ANSCode` tables do by construction), since
/// states index `table` unchecked. Call only when `lorastore_avx512_vbmi2_available()` returned 1.
size_t lorastore_ans_lanes_decode_avx512(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps);

/// `lorastore_ans_lanes_decode_avx512` with AVX2, for CPUs without AVX-512 VBMI2: the same steps, arguments
/// and results. Call only when `lorastore_avx2_available()` returned 1.
size_t lorastore_ans_lanes_decode_avx2(
    uint32_t *state, uint32_t *container, uint32_t *filled, const uint16_t *words, size_t word_count,
    size_t *word_index, const uint32_t *table, uint16_t *symbols, size_t steps);

#endif
