#ifndef LORASTORE_STREAMING_COPY_H
#define LORASTORE_STREAMING_COPY_H

#include <stddef.h>

/// Copies `count` bytes from `source` to `destination` (which must not overlap) with non-temporal stores
/// on x86_64: the destination's lines are neither read first nor kept in the caches, which is what a copy
/// of a large tensor that no one reads back soon wants. `memcpy` elsewhere.
void lorastore_copy_streaming(void *destination, const void *source, size_t count);

#endif
