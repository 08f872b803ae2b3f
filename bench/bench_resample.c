// The resampler alone (host/resample.c), one thread: 10 s of noise at each common source rate to the model's
// 32 kHz, the vector path beside the scalar loop (AC_RESAMPLE_SIMD=0) in the same run: milliseconds per 10 s and
// output samples per second. Decoding a 44.1 or 48 kHz file is mostly this.
// usage: bench_resample [REPEATS]      (default 9; medians; one JSON line per rate on stdout)
#include "../host/ac.h"
#include "bench_util.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double time_run(const ac_resampler *r, const float *x, int64_t n, float *y, int reps) {
    double t[64];
    if (reps > 64) reps = 64;
    for (int k = 0; k < reps; k++) {
        const double t0 = bench_now();
        ac_resampler_run(r, x, n, y);
        t[k] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1) {
        fprintf(stderr, "usage: bench_resample [REPEATS]\n");
        return 2;
    }
    omp_set_num_threads(1);  // one decode thread's cost: the decode pool runs its resampling single-threaded
    static const int rates[] = {44100, 48000, 22050, 16000, 96000};
    for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++) {
        const int sr = rates[ri];
        const int64_t n = (int64_t)sr * 10;
        float *x = malloc(sizeof(float) * (size_t)n);
        uint32_t s = 7;
        for (int64_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)((int16_t)(s >> 16)) / 32768.0f;
        }
        ac_resampler *vec = NULL, *sca = NULL;
        if (ac_resampler_create(sr, 32000, &vec)) return 1;
        setenv("AC_RESAMPLE_SIMD", "0", 1);
        if (ac_resampler_create(sr, 32000, &sca)) return 1;
        unsetenv("AC_RESAMPLE_SIMD");
        const int64_t m = ac_resampler_out_len(vec, n);
        float *y = malloc(sizeof(float) * (size_t)m), *z = malloc(sizeof(float) * (size_t)m);
        ac_resampler_run(vec, x, n, y);  // warm-up, and the two must agree
        ac_resampler_run(sca, x, n, z);
        const int same = memcmp(y, z, sizeof(float) * (size_t)m) == 0;
        const double tv = time_run(vec, x, n, y, reps), ts = time_run(sca, x, n, z, reps);
        fprintf(stderr, "%6d -> 32000 Hz, 10 s: vector %.2f ms (%.1f Msamples/s), scalar %.2f ms (%.1f), %.2fx%s\n",
                sr, 1e3 * tv, m / tv / 1e6, 1e3 * ts, m / ts / 1e6, ts / tv, same ? "" : "  OUTPUTS DIFFER");
        printf("{\"bench\":\"resample\",\"rate\":%d,\"seconds\":10,\"vector_ms\":%.3f,\"scalar_ms\":%.3f,"
               "\"vector_msamples_per_s\":%.1f,\"scalar_msamples_per_s\":%.1f,\"identical\":%s}\n",
               sr, 1e3 * tv, 1e3 * ts, m / tv / 1e6, m / ts / 1e6, same ? "true" : "false");
        free(x);
        free(y);
        free(z);
        ac_resampler_free(vec);
        ac_resampler_free(sca);
        if (!same) return 1;
    }
    return 0;
}
