// Benchmark: one ConvNeXt block's LayerNorm + MLP + layer scale + residual on the CPU (ref_convnext_mlp), per stage
// of ConvNeXt-Tiny at a 10 s clip's shape (P rows = T' x F' of the stage, C channels), whole vs in chunks of rows:
// the engine's choice (ref_convnext_mlp_chunk_rows) and fixed chunk sizes. Random weights (timing does not depend
// on them). Candidates run interleaved, REPEATS times each; medians. Per clip, the engine runs 3, 3, 9 and 3 blocks.
// usage: bench_cpu_mlp [REPEATS=9] [THREADS=all]
#include "bench_util.h"
#include "blas.h"
#include "ref/ref_ops.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *rnd(size_t n, unsigned *seed) {
    float *p = malloc(sizeof(float) * n);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = ((float)rand_r(seed) / (float)RAND_MAX - 0.5f) * 0.2f;
    return p;
}

#define NCAND 5
int main(int argc, char **argv) {
    ac_blas_retune(argv);
    const int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (argc > 2) omp_set_num_threads(atoi(argv[2]));
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_cpu_mlp [REPEATS=9] [THREADS=all]\n");
        return 2;
    }
    const int nthr = omp_get_max_threads();
    printf("bench_cpu_mlp: %d threads, OpenBLAS kernels %s, %d repeats, medians\n", nthr, openblas_get_corename(), reps);
    // ConvNeXt-Tiny on a 10 s clip: 1001 x 224 log-mel -> stem 252 x 56 -> /2 per stage
    const int P_[4] = {252 * 56, 126 * 28, 63 * 14, 31 * 7}, C_[4] = {96, 192, 384, 768}, depth[4] = {3, 3, 9, 3};
    double clip_whole = 0, clip_engine = 0;
    unsigned seed = 7;
    for (int s = 0; s < 4; s++) {
        const int64_t P = P_[s];
        const int C = C_[s];
        int64_t cand[NCAND] = {P, ref_convnext_mlp_chunk_rows(P, C), (1 << 20) / (4 * C), (1 << 19) / (4 * C),
                               (1 << 18) / (4 * C)};
        for (int c = 2; c < NCAND; c++)
            if (cand[c] < 16) cand[c] = 16;
        size_t hmax = 0;
        for (int c = 0; c < NCAND; c++) {
            const size_t need = ref_convnext_mlp_scratch(P, C, cand[c]);
            if (need > hmax) hmax = need;
        }
        float *x0 = rnd((size_t)P * C, &seed), *t0 = rnd((size_t)P * C, &seed), *lw = rnd(C, &seed),
              *lb = rnd(C, &seed), *w1 = rnd((size_t)4 * C * C, &seed), *b1 = rnd((size_t)4 * C, &seed),
              *w2 = rnd((size_t)4 * C * C, &seed), *b2 = rnd(C, &seed), *gm = rnd(C, &seed);
        float *x = malloc(sizeof(float) * P * C), *t = malloc(sizeof(float) * P * C), *h = malloc(sizeof(float) * hmax);
        if (!x0 || !t0 || !lw || !lb || !w1 || !b1 || !w2 || !b2 || !gm || !x || !t || !h) {
            fprintf(stderr, "bench_cpu_mlp: out of memory at stage %d\n", s + 1);
            return 1;
        }
        double ms[NCAND][1000];
        for (int r = 0; r < reps; r++)
            for (int c = 0; c < NCAND; c++) {
                memcpy(x, x0, sizeof(float) * P * C);
                memcpy(t, t0, sizeof(float) * P * C);
                double t1 = bench_now();
                ref_convnext_mlp(x, t, P, C, lw, lb, 1e-6f, w1, b1, w2, b2, gm, cand[c], h);
                ms[c][r] = 1e3 * (bench_now() - t1);
            }
        const double gflop = 16.0 * (double)P * C * C * 1e-9;  // two Linears, 2 x P x C x 4C multiply-adds
        double med[NCAND];
        for (int c = 0; c < NCAND; c++) {
            med[c] = bench_median(ms[c], reps);
            printf("CSV,stage%d,P=%lld,C=%d,%s,rows=%lld,%.2f ms,%.1f GFLOP/s,%.2fx whole\n", s + 1, (long long)P, C,
                   c == 0 ? "whole" : c == 1 ? "engine" : "fixed", (long long)cand[c], med[c], gflop / (med[c] * 1e-3),
                   med[0] / med[c]);
        }
        clip_whole += depth[s] * med[0];
        clip_engine += depth[s] * med[1];
        free(x0), free(t0), free(lw), free(lb), free(w1), free(b1), free(w2), free(b2), free(gm), free(x), free(t),
            free(h);
    }
    printf("per 10 s clip, all 18 blocks' LN + MLP: whole %.1f ms, engine's chunks %.1f ms (%.2fx)\n", clip_whole,
           clip_engine, clip_whole / clip_engine);
    return 0;
}
