#ifndef LORASTORE_SIMD_KERNELS_H
#define LORASTORE_SIMD_KERNELS_H

// The hot loops that Swift cannot express at full speed: 512-bit code behind run-time CPU checks.

#include "CPUFeatures.h"
#include "LowRankKernel.h"
#include "ANSLanes.h"
#include "StreamingCopy.h"
#include "FidelityRow.h"

#endif
