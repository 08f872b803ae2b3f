// erf GELU as host/ref/ref_ops.c computes it (same rational erf, |error| <= 4.2e-7, clamped to [-4, 4]),
// so the device decoder's feed-forward matches the CPU oracle's to the rounding of the products.
#pragma once

#include "../host/ref/erf_rational.h"

__device__ __forceinline__ float ac_gelu_erf(float x) {
    return 0.5f * x * (1.0f + ac_erf_rational(x * 0.70710678118654752440f));
}
