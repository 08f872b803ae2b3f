// Helpers shared by the benchmarks: a monotonic clock, the median of a sample, a string made safe for JSON, and
// CK, a CUDA runtime call that must succeed.
#ifndef AC_BENCH_UTIL_H
#define AC_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void) {  // seconds, monotonic
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Sorts v in place; the middle value (the mean of the two middle ones for even n).
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Quotes and backslashes become apostrophes, so that s (a device description) stays valid inside a JSON string.
static inline void bench_json_safe(char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\') *s = '\'';
}

// A CUDA runtime call in a GPU benchmark (a program, not library code): on failure the call, its file and line and
// the error, then exit(1). For files that include cuda_runtime_api.h.
#define CK(expr)                                                                                                 \
    do {                                                                                                         \
        cudaError_t e_ = (expr);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                 \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_));              \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

#endif
