// erf GELU, nn.GELU() (approximate='none'): 0.5 v (1 + erf(v / sqrt 2)), with host/ref's rational erf
// (host/ref/erf_rational.h: |error| <= 4.2e-7, clamped to [-4, 4]), the function the CPU oracle computes.
//  - ac_gelu_erf: exactly host/ref/ref_ops.c's GELU (IEEE quotient), so the decoder's feed-forward and the FP32
//    encoder MLP match the CPU to the rounding of the products around it.
//  - ac_gelu_erf_fast: the same polynomials, the quotient through the SFU's approximate reciprocal (1 ulp) and the
//    clamp as min/max, for the BF16 mode's MLPs, whose GELU outputs are rounded to fp16 (2^-11) next. On sm_90
//    it compiles to 19 SASS instructions where erff's GELU took 26 and the IEEE quotient 24 plus a slow-path
//    branch (cuobjdump); at C = 96 the GELUs, not the tensor cores, bound the encoder's MLP (bench/RESULTS.md).
//    A NaN input gives NaN through the factor 0.5 v, whatever the clamp makes of it.
// Plain C++ under the CPU emulators (tests/emu defines __device__ and __forceinline__ away; __CUDA_ARCH__ is
// unset there, so the reciprocal is an exact division).
#pragma once

#include "../host/ref/erf_rational.h"

__device__ __forceinline__ float ac_gelu_erf(float x) {
    return 0.5f * x * (1.0f + ac_erf_rational(x * 0.70710678118654752440f));
}

__device__ __forceinline__ float ac_gelu_erf_fast(float v) {
    const float x = fminf(fmaxf(v * 0.70710678118654752440f, -4.0f), 4.0f), x2 = x * x;
    const float q = ac_erf_rational_den(x2);  // in [-2.39, -0.0142]: rcp.approx has no edge case there
#ifdef __CUDA_ARCH__
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(q));
#else
    const float r = 1.0f / q;
#endif
    return 0.5f * v * (1.0f + ac_erf_rational_num(x, x2) * r);
}
