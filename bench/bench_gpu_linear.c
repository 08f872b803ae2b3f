// Benchmark: the decoder's linear layers on the GPU (kernels/decoder_linear.h, ac_gpu_linear in BF16) at the
// shapes of a CoNeTTE decode step, M = clips x beams rows: in_proj (N 768, K 256), the four N 256 x K 256
// projections, linear1 (N 2048, K 256, GELU), linear2 (N 256, K 2048), the classifier (N 4371, K 256), and the
// cross-attention K/V projection of the encoder memory (M = 31 frames per clip, N 512). Each shape with the 64 x 64
// BF16 tile, the 32 x 32 one and the launcher's own choice (AC_LINEAR_TILE), so that a GPU run says whether the
// choice (32 x 32 where 64 x 64 gives fewer blocks than SMs) holds; all with the split product the decoder uses
// (three bf16 products per step: W_hi and W_lo), then the launcher's tile with the plain bf16 product, for what the
// split costs. One JSON line per (shape, product, tile) on stdout ("tflops" counts one product):
//   {"bench":"gpu_linear","M":768,"K":256,"N":256,"product":"split","tile":"32","us":..,"tflops":..,"device":".."}
// Then the two N 256 shapes (out_proj, linear2) as the decoder runs them, with the residual LayerNorm:
// ac_gpu_linear_add_ln's default path (out_proj: "fused", one launch; linear2: "split-K", chunks of 512 k and the
// LayerNorm summing them) and AC_LINEAR_LN=0's ("two launches": the plain linear, then add+LN), split product:
//   {"bench":"gpu_linear_ln","M":768,"K":256,"N":256,"path":"fused","default":true,"us":..,"device":".."}
// us: median of --reps (7) timings of --calls (50) back-to-back calls each (CUDA events), per call. Exits 77
// without a GPU.
// usage: bench_gpu_linear [--clips 256] [--beam 3] [--reps 7] [--calls 50] [--vocab 4371]
// (--vocab: the classifier's N, CoNeTTE's 4371 by default)
#include "bench_util.h"
#include "../kernels/decoder_linear.h"
#include "../kernels/device.h"

#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define REPS_MAX 64

// device buffer of n small pseudo-random values, float (bf16 0) or bf16 (bf16 1)
static void *dev_fill(size_t n, int bf16, uint64_t seed) {
    const size_t esz = bf16 ? 2 : 4;
    unsigned char *h = malloc(esz * n);
    if (!h) exit(1);
    uint64_t r = seed;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        const float v = (float)((double)(r >> 40) / 16777216.0 - 0.5) * 0.1f;
        uint32_t u;
        memcpy(&u, &v, 4);
        if (bf16) {
            const uint16_t hi = (uint16_t)(u >> 16);  // truncation: any bf16 near v serves a timing
            memcpy(h + 2 * i, &hi, 2);
        } else {
            memcpy(h + 4 * i, &v, 4);
        }
    }
    void *d = NULL;
    CK(cudaMalloc(&d, esz * n));
    CK(cudaMemcpy(d, h, esz * n, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

// The median over reps (after a warm-up round) of the time per call of `calls` back-to-back calls of
// fn(arg, s), CUDA events around each round; 1 if a call failed (its message printed).
static int time_calls(cudaStream_t s, cudaEvent_t e0, cudaEvent_t e1, int reps, int calls,
                      ac_status (*fn)(void *, cudaStream_t), void *arg, double *median_us) {
    double us[REPS_MAX];
    for (int r = -1; r < reps; r++) {  // r = -1: warm-up
        CK(cudaEventRecord(e0, s));
        for (int c = 0; c < calls; c++)
            if (fn(arg, s) != AC_OK) {
                fprintf(stderr, "bench_gpu_linear: %s\n", ac_last_error());
                return 1;
            }
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 0) us[r] = 1e3 * ms / calls;
    }
    *median_us = bench_median(us, reps);
    return 0;
}

typedef struct {  // one timed call's arguments: ac_gpu_linear, or ac_gpu_linear_add_ln when ln_w is set
    const float *x, *b, *ln_w, *ln_b;
    float *y, *scratch;
    const void *Wb, *Wl;
    int M, K, N, gelu;
} lin_call;

static ac_status call_linear(void *p, cudaStream_t s) {
    const lin_call *a = (const lin_call *)p;
    if (a->ln_w)
        return ac_gpu_linear_add_ln(a->x, a->M, NULL, a->K, NULL, a->Wb, a->Wl, a->b, a->N, a->y, a->ln_w, a->ln_b,
                                    1e-5f, a->scratch, s);
    return ac_gpu_linear(a->x, a->M, NULL, a->K, NULL, a->Wb, a->Wl, a->b, a->N, a->gelu, a->y, s);
}

int main(int argc, char **argv) {
    int clips = 256, beam = 3, reps = 7, calls = 50, vocab = 4371;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--clips") && v) clips = atoi(v);
        else if (!strcmp(argv[i], "--beam") && v) beam = atoi(v);
        else if (!strcmp(argv[i], "--reps") && v) reps = atoi(v);
        else if (!strcmp(argv[i], "--calls") && v) calls = atoi(v);
        else if (!strcmp(argv[i], "--vocab") && v) vocab = atoi(v);
        else {
            fprintf(stderr, "usage: bench_gpu_linear [--clips 256] [--beam 3] [--reps 7] [--calls 50] [--vocab 4371]\n");
            return 2;
        }
        i++;
    }
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_linear: no CUDA device: skipped\n");
        return 77;
    }
    if (clips < 1 || beam < 1 || reps < 1 || reps > REPS_MAX || calls < 1 || vocab < 1) return 2;
    char dev[256] = "";
    ac_cuda_device_describe(0, dev, sizeof dev);
    bench_json_safe(dev);
    const int R = clips * beam;
    // M, K, N, gelu: one decode step's linears, then the memory's cross K/V projection (once per clip)
    const int shapes[][4] = {{R, 256, 768, 0},  {R, 256, 256, 0},   {R, 256, 2048, 1},
                             {R, 2048, 256, 0}, {R, 256, vocab, 0},  {31 * clips, 256, 512, 0}};
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    const char *tiles[3] = {"64", "32", "auto"};
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    int rc = 0;
    for (int k = 0; k < n_shapes; k++) {
        const int M = shapes[k][0], K = shapes[k][1], N = shapes[k][2], gelu = shapes[k][3];
        float *x = dev_fill((size_t)M * K, 0, 1 + k), *b = dev_fill((size_t)N, 0, 7 + k);
        void *Wb = dev_fill((size_t)N * K, 1, 13 + k), *Wl = dev_fill((size_t)N * K, 1, 17 + k);
        float *y = NULL;
        CK(cudaMalloc((void **)&y, sizeof(float) * (size_t)M * N));
        for (int t = 0; t < 4; t++) {  // split: 64, 32, auto; then plain bf16: auto
            const int split = t < 3;
            const char *tile = tiles[t < 3 ? t : 2];
            if (strcmp(tile, "auto")) setenv("AC_LINEAR_TILE", tile, 1);
            else unsetenv("AC_LINEAR_TILE");
            lin_call a = {.x = x, .b = b, .y = y, .Wb = Wb, .Wl = split ? Wl : NULL, .M = M, .K = K, .N = N,
                          .gelu = gelu};
            double med = 0;
            if ((rc = time_calls(s, e0, e1, reps, calls, call_linear, &a, &med))) break;
            printf("{\"bench\":\"gpu_linear\",\"M\":%d,\"K\":%d,\"N\":%d,\"gelu\":%d,\"product\":\"%s\","
                   "\"tile\":\"%s\",\"us\":%.2f,\"tflops\":%.2f,\"device\":\"%s\"}\n",
                   M, K, N, gelu, split ? "split" : "bf16", tile, med, 2.0 * M * K * N / (med * 1e-6) / 1e12, dev);
            fflush(stdout);
        }
        unsetenv("AC_LINEAR_TILE");
        cudaFree(x);
        cudaFree(b);
        cudaFree(Wb);
        cudaFree(Wl);
        cudaFree(y);
        if (rc) break;
    }
    // the sublayer ends: linear + residual + LayerNorm, the default path or two plain launches (x is rewritten every
    // call: the values drift, the work does not)
    const int ln_k[2] = {256, 2048};
    for (int k = 0; k < 2 && !rc; k++) {
        const int M = R, K = ln_k[k], N = 256;
        float *in = dev_fill((size_t)M * K, 0, 31 + k), *b = dev_fill((size_t)N, 0, 37 + k);
        float *x = dev_fill((size_t)M * N, 0, 41 + k), *lw = dev_fill((size_t)N, 0, 43 + k);
        float *lb = dev_fill((size_t)N, 0, 47 + k);
        void *Wb = dev_fill((size_t)N * K, 1, 53 + k), *Wl = dev_fill((size_t)N * K, 1, 59 + k);
        float *scratch = NULL;
        CK(cudaMalloc((void **)&scratch, sizeof(float) * ac_gpu_linear_add_ln_scratch(Wb, M, N, K)));
        for (int dflt = 1; dflt >= 0 && !rc; dflt--) {
            if (dflt) unsetenv("AC_LINEAR_LN");
            else setenv("AC_LINEAR_LN", "0", 1);
            const char *names[3] = {"two launches", "fused", "split-K"};
            const char *path = names[ac_gpu_linear_add_ln_path(Wb, N, K)];
            lin_call a = {.x = in, .b = b, .ln_w = lw, .ln_b = lb, .y = x, .scratch = scratch, .Wb = Wb, .Wl = Wl,
                          .M = M, .K = K, .N = N};
            double med = 0;
            if ((rc = time_calls(s, e0, e1, reps, calls, call_linear, &a, &med))) break;
            printf("{\"bench\":\"gpu_linear_ln\",\"M\":%d,\"K\":%d,\"N\":%d,\"path\":\"%s\",\"default\":%s,"
                   "\"us\":%.2f,\"device\":\"%s\"}\n", M, K, N, path, dflt ? "true" : "false", med, dev);
            fflush(stdout);
        }
        unsetenv("AC_LINEAR_LN");
        cudaFree(in);
        cudaFree(b);
        cudaFree(x);
        cudaFree(lw);
        cudaFree(lb);
        cudaFree(Wb);
        cudaFree(Wl);
        cudaFree(scratch);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaStreamDestroy(s);
    return rc;
}
