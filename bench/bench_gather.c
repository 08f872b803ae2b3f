// The GPU encoder's host staging (host/gather.c), which runs inside every encode call on the worker's thread:
// gathering a batch of float clips as they are (ac_gather_copy) vs packing them to int16 (ac_gather_s16_exact,
// half the bytes written and sent over PCIe), and how soon packing gives up on audio that does not pack.
// Clips: 10 s at 32 kHz, 16-bit values as float (what libsndfile gives for a 16-bit file at the model rate).
// usage: bench_gather [CLIPS [REPEATS]]      (default 256 clips, 9 repeats; prints medians, one JSON line last)
#include "../host/gather.h"
#include "bench_util.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 256, reps = argc > 2 ? atoi(argv[2]) : 9;
    const int64_t len = 320000;
    if (n < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_gather [CLIPS [REPEATS]]\n");
        return 2;
    }
    float **x = malloc(sizeof(float *) * (size_t)n);
    const void **src = malloc(sizeof(void *) * (size_t)n);
    size_t *bytes = malloc(sizeof(size_t) * (size_t)n);
    int64_t *count = malloc(sizeof(int64_t) * (size_t)n);
    float *dst = malloc(sizeof(float) * (size_t)n * (size_t)len);
    if (!x || !src || !bytes || !count || !dst) return 1;
    uint32_t s = 1;
    for (int i = 0; i < n; i++) {
        x[i] = malloc(sizeof(float) * (size_t)len);
        if (!x[i]) return 1;
        for (int64_t j = 0; j < len; j++) {
            s = s * 1664525u + 1013904223u;
            x[i][j] = (float)((int16_t)(s >> 16)) / 32768.0f;
        }
        src[i] = x[i];
        bytes[i] = sizeof(float) * (size_t)len;
        count[i] = len;
    }
    memset(dst, 0, sizeof(float) * (size_t)n * (size_t)len);  // pages mapped before timing, as the pinned area is
    double *t_copy = malloc(sizeof(double) * (size_t)reps), *t_pack = malloc(sizeof(double) * (size_t)reps),
           *t_fail = malloc(sizeof(double) * (size_t)reps);
    int packed = 1;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        ac_gather_copy(dst, n, src, bytes);
        double t1 = bench_now();
        packed &= ac_gather_s16_exact((int16_t *)dst, n, (const float *const *)x, count);
        double t2 = bench_now();
        x[0][1] += 1e-6f;  // resampled audio: the first clip fails in its first block
        packed &= !ac_gather_s16_exact((int16_t *)dst, n, (const float *const *)x, count);
        double t3 = bench_now();
        x[0][1] -= 1e-6f;
        t_copy[r] = t1 - t0, t_pack[r] = t2 - t1, t_fail[r] = t3 - t2;
    }
    const double mb = (double)n * (double)len * 4 / 1e6;
    const double c = bench_median(t_copy, reps), p = bench_median(t_pack, reps), f = bench_median(t_fail, reps);
    printf("%d clips of 10 s (%.0f MB as float), %d threads, medians of %d:\n", n, mb, omp_get_max_threads(), reps);
    printf("  float copy      %8.2f ms  (%.1f GB/s read)\n", 1e3 * c, mb / 1e3 / c);
    printf("  int16 pack      %8.2f ms  (%.1f GB/s read), %.2fx the copy's time\n", 1e3 * p, mb / 1e3 / p, p / c);
    printf("  pack gives up   %8.3f ms  (audio that does not pack)\n", 1e3 * f);
    printf("{\"bench\":\"gather\",\"clips\":%d,\"threads\":%d,\"copy_ms\":%.3f,\"pack_ms\":%.3f,\"fail_ms\":%.4f,"
           "\"packed_ok\":%s}\n", n, omp_get_max_threads(), 1e3 * c, 1e3 * p, 1e3 * f, packed ? "true" : "false");
    for (int i = 0; i < n; i++) free(x[i]);
    free(x), free(src), free(bytes), free(count), free(dst), free(t_copy), free(t_pack), free(t_fail);
    return packed ? 0 : 1;
}
