// erf(x) as a rational function x P(x^2) / Q(x^2) on x clamped to [-4, 4] (beyond, erf is +-1 in float32): max abs
// error 4.2e-7 against erf in double over [-6, 6] (tests/test_ops.c). Branch-free, so it vectorizes on the CPU
// (glibc's erff is ~25x slower, and GELU runs on every hidden activation of the encoder: ~40 M per 10 s clip).
// One definition for the CPU reference (host/ref/ref_ops.c) and the device GELUs (kernels/gelu.cuh), so
// that both compute the same numbers; a NaN passes through to the result in both.
#ifndef AC_ERF_RATIONAL_H
#define AC_ERF_RATIONAL_H

#if defined(__CUDACC__)
#define AC_ERF_FN __host__ __device__ __forceinline__
#else
#define AC_ERF_FN static inline
#endif

// x P(x^2) and Q(x^2), x already clamped: erf = num / den. Split out for kernels/gelu.cuh's fast quotient.
AC_ERF_FN float ac_erf_rational_num(float x, float x2) {
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    return x * p;
}

AC_ERF_FN float ac_erf_rational_den(float x2) {
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return q;
}

AC_ERF_FN float ac_erf_rational(float a) {
    float x = a < -4.0f ? -4.0f : a > 4.0f ? 4.0f : a, x2 = x * x;
    return ac_erf_rational_num(x, x2) / ac_erf_rational_den(x2);
}

#undef AC_ERF_FN
#endif
