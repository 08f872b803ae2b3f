// erf GELU as host/ref/ref_ops.c computes it (same rational erf, |error| <= 4.2e-7, clamped to [-4, 4]),
// so the device decoder's feed-forward matches the CPU oracle's to the rounding of the products.
#pragma once

__device__ __forceinline__ float ac_erf_rational(float a) {
    float x = fminf(fmaxf(a, -4.0f), 4.0f), x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return x * p / q;
}

__device__ __forceinline__ float ac_gelu_erf(float x) {
    return 0.5f * x * (1.0f + ac_erf_rational(x * 0.70710678118654752440f));
}
