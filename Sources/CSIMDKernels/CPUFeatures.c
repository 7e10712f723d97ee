// Run-time CPU checks for the AVX-512 kernels. Swift compiles the package for Haswell, so every 512-bit
// function is called only after one of these returned 1.

#include "CPUFeatures.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <stdint.h>

static uint64_t extended_control_register(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

int lorastore_avx2_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned osxsave = 1u << 27;
    if ((ecx & osxsave) == 0) return 0;
    // XMM and YMM state enabled by the OS.
    const uint64_t ymmState = 0x6;
    if ((extended_control_register() & ymmState) != ymmState) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx2 = 1u << 5;
    return (ebx & avx2) != 0;
}

int lorastore_avx512_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned osxsave = 1u << 27, fma = 1u << 12, f16c = 1u << 29;
    if ((ecx & osxsave) == 0 || (ecx & fma) == 0 || (ecx & f16c) == 0) return 0;
    // XMM, YMM, the opmask registers and both halves of the ZMM state must be enabled by the OS.
    const uint64_t zmmState = 0xE6;
    if ((extended_control_register() & zmmState) != zmmState) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx512f = 1u << 16, avx512dq = 1u << 17, avx512bw = 1u << 30, avx512vl = 1u << 31;
    const unsigned needed = avx512f | avx512dq | avx512bw | avx512vl;
    return (ebx & needed) == needed;
}

int lorastore_avx512_bf16_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!lorastore_avx512_available() || !__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx512bf16 = 1u << 5;
    return (eax & avx512bf16) != 0;
}

int lorastore_avx512_vbmi2_available(void) {
    unsigned eax, ebx, ecx, edx;
    if (!lorastore_avx512_available() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx512vbmi2 = 1u << 6;
    return (ecx & avx512vbmi2) != 0;
}

#else

int lorastore_avx2_available(void) { return 0; }

int lorastore_avx512_available(void) { return 0; }

int lorastore_avx512_bf16_available(void) { return 0; }

int lorastore_avx512_vbmi2_available(void) { return 0; }

#endif
