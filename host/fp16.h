// IEEE binary16 (fp16) <-> float32 bit patterns on the host, as the ConvNeXt MLP's operands take them
// (kernels/convnext_mlp_operand.cuh): round to nearest even, subnormals kept, and SATURATING at +-65504 where
// __float2half_rn would give an infinity, because the kernels saturate too (an inf operand turns a whole GEMM row
// into NaN; a clamped one stays a finite, if wrong, number). NaN stays a quiet NaN.
// Used by the tests, benchmarks and CPU emulation that prepare fp16 operands or read fp16 results.
#ifndef AC_FP16_H
#define AC_FP16_H

#include <stdint.h>
#include <string.h>

#define AC_FP16_MAX 65504.0f

static inline uint16_t ac_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7bffu); // rounds past 65504 (or inf): saturate
    if (a >= 0x38800000u) {                                   // normal in fp16 (>= 2^-14)
        const uint32_t r = a + 0xfffu + ((a >> 13) & 1u);     // round the 13 dropped bits to nearest even
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));  // rebias the exponent 127 -> 15
    }
    if (a < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
    // subnormal: the significand with its implicit bit, shifted to units of 2^-24, rounded to nearest even
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - (int)(a >> 23);  // 14 .. 24 for exponents 2^-15 .. 2^-25
    const uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    return (uint16_t)(sign | (q + (rem > half || (rem == half && (q & 1u)))));
}

static inline float ac_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t u;
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else if (e)
        u = sign | ((e + 112u) << 23) | (m << 13);
    else {  // zero or subnormal: m 2^-24
        float f = (float)m * 5.9604644775390625e-8f;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// x rounded to the nearest fp16 value (saturating), kept as a float
static inline float ac_f16_round(float x) { return ac_f16_to_f32(ac_f32_to_f16(x)); }

#endif
