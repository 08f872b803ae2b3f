// Benchmark: the self-attention KV cache's beam reordering, both ways issue #6 names ("cache indirection or an
// in-place gather: measure"), over the decode steps of a batch as kernels/gpu_decoder.cu runs them:
//   indirection  (the decoder's) each step, every layer's ac_gpu_attention_self reads cache[t][anc[r][t]], and
//                after the beam step the ancestor table follows the rows (ac_gpu_gather_rows, rows x (step + 1)
//                ints);
//   gather       each step the attention reads cache[t][r] (an identity table), and after the beam step every
//                layer's cached k | v follows the rows (ac_gpu_kv_cache_gather into a second cache, swapped:
//                layers x (step + 1) x rows x 2 d_model floats).
// Every row of every clip stays live (beam rows continue random rows of their clip), 20 steps by default: the
// worst case for the gather, whose copy grows with the step. One JSON line per way on stdout:
//   {"bench":"gpu_kv_reorder","mode":"indirection","clips":256,"beam":3,"layers":6,"d_model":256,"steps":20,
//    "us_per_step":..,"reorder_us_per_step":..,"device":".."}
// us_per_step: the attention of every layer plus the reorder, per step, median of --reps timings of the whole
// chain (CUDA events); reorder_us_per_step: the reorder launches alone (the same chain without them, subtracted).
// usage: bench_gpu_kv_reorder [--clips 256] [--beam 3] [--layers 6] [--d-model 256] [--heads 4] [--steps 20]
//                             [--reps 5]
// Exits 77 without a GPU.
#include "bench_util.h"
#include "../kernels/attention_decode.h"
#include "../kernels/beam_search.h"
#include "../kernels/device.h"
#include "../kernels/kv_cache_gather.h"

#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr)                                                                                                 \
    do {                                                                                                         \
        if ((expr) != AC_OK) {                                                                                   \
            fprintf(stderr, "bench_gpu_kv_reorder: %s\n", ac_last_error());                                     \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

#define REPS_MAX 32

static void *dev_upload(const void *h, size_t bytes) {
    void *d = NULL;
    CK(cudaMalloc(&d, bytes));
    CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

typedef struct {
    int n, K, L, D, H, T, R;
    float *qkv, *att, *cache[2];
    int *anc[2], *anc_id, *row_off, *n_live, *src_row, *n_rows;
} setup;

// One batch's steps, one way (gather 0: indirection, 1: gather), with or without the reorder launches.
static void chain(setup *s, int gather, int reorder, cudaStream_t st) {
    const int64_t stride = (int64_t)s->T * s->R * 2 * s->D;  // one layer's cache
    int cur = 0;
    for (int i = 0; i < s->T; i++) {
        int *anc = gather ? s->anc_id : s->anc[cur];
        for (int l = 0; l < s->L; l++)
            OK(ac_gpu_attention_self(s->qkv, s->cache[gather ? cur : 0] + l * stride, anc, i, s->T, s->row_off,
                                     s->n_live, s->n, s->R, s->D, s->H, s->att, st));
        if (!reorder || i + 1 == s->T) continue;
        if (gather)
            OK(ac_gpu_kv_cache_gather(s->cache[cur], s->cache[1 - cur], s->L, stride, i + 1, s->R, 2 * s->D,
                                      s->src_row, s->n_rows, st));
        else
            OK(ac_gpu_gather_rows(s->anc[cur], s->anc[1 - cur], s->T, i + 1, s->src_row, NULL, s->n_rows, s->R, st));
        cur = 1 - cur;
    }
}

int main(int argc, char **argv) {
    int clips = 256, beam = 3, layers = 6, D = 256, H = 4, steps = 20, reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--clips") && v) clips = atoi(v);
        else if (!strcmp(argv[i], "--beam") && v) beam = atoi(v);
        else if (!strcmp(argv[i], "--layers") && v) layers = atoi(v);
        else if (!strcmp(argv[i], "--d-model") && v) D = atoi(v);
        else if (!strcmp(argv[i], "--heads") && v) H = atoi(v);
        else if (!strcmp(argv[i], "--steps") && v) steps = atoi(v);
        else if (!strcmp(argv[i], "--reps") && v) reps = atoi(v);
        else {
            fprintf(stderr, "usage: bench_gpu_kv_reorder [--clips 256] [--beam 3] [--layers 6] [--d-model 256] "
                            "[--heads 4] [--steps 20] [--reps 5]\n");
            return 2;
        }
        i++;
    }
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_kv_reorder: no CUDA device: skipped\n");
        return 77;
    }
    if (clips < 1 || beam < 1 || layers < 1 || H < 1 || D < H || D % H || steps < 1 || reps < 1 || reps > REPS_MAX)
        return 2;
    char dev[256] = "";
    ac_cuda_device_describe(0, dev, sizeof dev);
    bench_json_safe(dev);
    setup s = {.n = clips, .K = beam, .L = layers, .D = D, .H = H, .T = steps, .R = clips * beam};
    const int R = s.R;
    // inputs: one step's q | k | v (the same every step: the timing does not depend on the values), every row live
    // in its clip, each beam row continuing a random row of its clip
    uint64_t rng = 7;
    float *h = malloc(sizeof(float) * (size_t)R * 3 * D);
    int *hi = malloc(sizeof(int) * (size_t)R * steps), *off = malloc(sizeof(int) * clips);
    int *live = malloc(sizeof(int) * clips), *src = malloc(sizeof(int) * R);
    if (!h || !hi || !off || !live || !src) return 1;
    for (size_t i = 0; i < (size_t)R * 3 * D; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
    }
    for (int c = 0; c < clips; c++) {
        off[c] = c * beam;
        live[c] = beam;
        for (int j = 0; j < beam; j++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            src[c * beam + j] = c * beam + (int)((rng >> 33) % (uint64_t)beam);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < steps; t++) hi[(size_t)r * steps + t] = r;  // a valid table: each row its own ancestor
    s.qkv = dev_upload(h, sizeof(float) * (size_t)R * 3 * D);
    s.anc[0] = dev_upload(hi, sizeof(int) * (size_t)R * steps);
    s.anc[1] = dev_upload(hi, sizeof(int) * (size_t)R * steps);
    s.anc_id = dev_upload(hi, sizeof(int) * (size_t)R * steps);
    s.row_off = dev_upload(off, sizeof(int) * clips);
    s.n_live = dev_upload(live, sizeof(int) * clips);
    s.src_row = dev_upload(src, sizeof(int) * R);
    s.n_rows = dev_upload(&R, sizeof(int));
    const size_t cache_bytes = sizeof(float) * (size_t)layers * steps * R * 2 * D;
    CK(cudaMalloc((void **)&s.att, sizeof(float) * (size_t)R * D));
    for (int k = 0; k < 2; k++) {
        CK(cudaMalloc((void **)&s.cache[k], cache_bytes));
        CK(cudaMemset(s.cache[k], 0, cache_bytes));
    }
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int gather = 0; gather < 2; gather++) {
        double med[2];
        for (int reorder = 1; reorder >= 0; reorder--) {
            double us[REPS_MAX];
            for (int r = -1; r < reps; r++) {  // r = -1: warm-up
                CK(cudaEventRecord(e0, st));
                chain(&s, gather, reorder, st);
                CK(cudaEventRecord(e1, st));
                CK(cudaEventSynchronize(e1));
                float ms = 0;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                if (r >= 0) us[r] = 1e3 * ms / steps;
            }
            med[reorder] = bench_median(us, reps);
        }
        printf("{\"bench\":\"gpu_kv_reorder\",\"mode\":\"%s\",\"clips\":%d,\"beam\":%d,\"layers\":%d,\"d_model\":%d,"
               "\"steps\":%d,\"us_per_step\":%.2f,\"reorder_us_per_step\":%.2f,\"device\":\"%s\"}\n",
               gather ? "gather" : "indirection", clips, beam, layers, D, steps, med[1], med[1] - med[0], dev);
        fflush(stdout);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaStreamDestroy(st);
    cudaFree(s.qkv);
    cudaFree(s.att);
    for (int k = 0; k < 2; k++) {
        cudaFree(s.cache[k]);
        cudaFree(s.anc[k]);
    }
    cudaFree(s.anc_id);
    cudaFree(s.row_off);
    cudaFree(s.n_live);
    cudaFree(s.src_row);
    cudaFree(s.n_rows);
    free(h);
    free(hi);
    free(off);
    free(live);
    free(src);
    return 0;
}
