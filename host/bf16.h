// bfloat16 <-> float32 bit patterns on the host: the top half of a binary32, rounded to nearest even as
// __float2bfloat16_rn rounds a finite value (NaN is not kept a NaN: callers pass finite values or check first).
// Used where the host reads bf16 tensors (model_file.c) and where tests, benchmarks and the CPU emulation of the
// kernels prepare bf16 operands or read bf16 results.
#ifndef AC_BF16_H
#define AC_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t ac_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float ac_bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// x rounded to the nearest bf16 value, kept as a float
static inline float ac_bf16_round(float x) { return ac_bf16_to_f32(ac_f32_to_bf16(x)); }

#endif
