// Benchmark: the decoder's fixed-order linear (ref_linear_rows, host/ref/ref_ops.c) as one decoding step uses it:
// the 6 layers' in_proj (768 x 256), out_proj, cross-attention query and out_proj (256 x 256 each), linear1
// (2048 x 256) and linear2 (256 x 2048), then the classifier (4371 x 256): 40 MB of float32 weights streamed per
// step through M rows (clips x live beams: 24 for 8 clips at beam 3). 20 steps per repeat, medians.
// usage: bench_cpu_linear_rows [ROWS=1,6,24,48] [REPEATS=15] [THREADS=1]
#include "bench_util.h"
#include "blas.h"
#include "ref/ref_ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L = 6, D = 256, FD = 2048, V = 4371, STEPS = 20, MAX_REPS = 1000 };

int main(int argc, char **argv) {
    ac_blas_retune(argv);
    const char *rows = argc > 1 ? argv[1] : "1,6,24,48";
    const int reps = argc > 2 ? atoi(argv[2]) : 15;
    omp_set_num_threads(argc > 3 ? atoi(argv[3]) : 1);
    if (reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "usage: bench_cpu_linear_rows [ROWS=1,6,24,48] [REPEATS=15] [THREADS=1]\n");
        return 2;
    }
    const int N[6] = {3 * D, D, D, D, FD, D}, K[6] = {D, D, D, D, D, FD};
    float *W[L * 6 + 1];
    double flop_row = 2.0 * V * D;  // per row and step
    for (int l = 0; l <= L * 6; l++) {
        const size_t n = l < L * 6 ? (size_t)N[l % 6] * K[l % 6] : (size_t)V * D;
        if (l < L * 6) flop_row += 2.0 * (double)n;
        if (!(W[l] = malloc(sizeof(float) * n))) {
            fprintf(stderr, "bench_cpu_linear_rows: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < n; i++) W[l][i] = (float)(i % 13) * 0.01f - 0.06f;
    }
    printf("bench_cpu_linear_rows: %d thread(s), %.1f MB of weights per step, %d steps per repeat, medians of %d\n",
           omp_get_max_threads(), (flop_row / 2 * 4) / 1e6, STEPS, reps);
    char *list = strdup(rows);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        const int M = atoi(tok);
        if (M < 1 || M > 4096) continue;
        float *x = malloc(sizeof(float) * M * FD), *y = malloc(sizeof(float) * M * V);
        if (!x || !y) return 1;
        for (int i = 0; i < M * FD; i++) x[i] = (float)(i % 5) * 0.1f;
        double t[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            const double t0 = bench_now();
            for (int s = 0; s < STEPS; s++) {
                for (int l = 0; l < L * 6; l++) ref_linear_rows(x, M, K[l % 6], W[l], NULL, N[l % 6], y);
                ref_linear_rows(x, M, D, W[L * 6], NULL, V, y);
            }
            t[r] = bench_now() - t0;
        }
        const double med = bench_median(t, reps);
        printf("CSV,linear_rows,rows=%d,%.2f ms per step,%.1f GFLOP/s,%.1f GB/s of weights\n", M, 1e3 * med / STEPS,
               STEPS * flop_row * M / med * 1e-9, STEPS * flop_row / 2 * 4 / med * 1e-9);
        free(x), free(y);
    }
    free(list);
    for (int l = 0; l <= L * 6; l++) free(W[l]);
    return 0;
}
