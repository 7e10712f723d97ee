// Large copies without read-for-ownership traffic. glibc's memcpy switches to non-temporal stores only
// above a threshold derived from the last-level cache (a large fraction of it), which on a machine with a
// large shared L3 leaves copies of whole tensors on ordinary stores: every destination line is read before
// it is written, three transfers per line where the copy needs two.

#include "StreamingCopy.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)

#include <emmintrin.h>

void lorastore_copy_streaming(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    // Ordinary stores up to the first 16-byte boundary of the destination, which the streaming stores need.
    size_t head = (16 - ((uintptr_t)to & 15)) & 15;
    if (head > count) head = count;
    memcpy(to, from, head);
    to += head;
    from += head;
    count -= head;
    const size_t body = count & ~(size_t)63;
    for (size_t offset = 0; offset < body; offset += 64) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(from + offset));
        const __m128i b = _mm_loadu_si128((const __m128i *)(from + offset + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(from + offset + 32));
        const __m128i d = _mm_loadu_si128((const __m128i *)(from + offset + 48));
        _mm_stream_si128((__m128i *)(to + offset), a);
        _mm_stream_si128((__m128i *)(to + offset + 16), b);
        _mm_stream_si128((__m128i *)(to + offset + 32), c);
        _mm_stream_si128((__m128i *)(to + offset + 48), d);
    }
    // Streaming stores are weakly ordered: make them visible before the caller signals completion.
    _mm_sfence();
    memcpy(to + body, from + body, count - body);
}

#else

void lorastore_copy_streaming(void *destination, const void *source, size_t count) {
    memcpy(destination, source, count);
}

#endif
