#ifndef LORASTORE_CPU_FEATURES_H
#define LORASTORE_CPU_FEATURES_H

/// Whether this CPU and operating system run AVX2 (with the YMM state enabled by the OS). Always 0 off x86_64.
int lorastore_avx2_available(void);

/// Whether this CPU and operating system run the AVX-512 kernels (AVX-512 F, BW, VL and DQ, with the
/// ZMM state enabled by the OS). Always 0 off x86_64.
int lorastore_avx512_available(void);

/// Whether the CPU also has AVX-512 BF16, whose conversion instruction makes BF16 output cheaper.
int lorastore_avx512_bf16_available(void);

/// Whether the CPU also has AVX-512 VBMI2, whose expanding load feeds the tANS lane decoder.
int lorastore_avx512_vbmi2_available(void);

#endif
