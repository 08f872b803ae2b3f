// Benchmark of the ConvNeXt block MLP on GPU (kernels/convnext_mlp*.cu): x += gamma * (GELU(h W1^T + b1) W2^T
// + b2), x (N, C) fp32, h (N, C) fp32/fp16 (the BF16 mode's MLP operands are fp16:
// kernels/convnext_mlp_operand.cuh), at the four stage shapes of ConvNeXt-Tiny on 10 s clips
// (models.md §1: 1001 frames x 224 mels -> stem 4x4/4 (time pad 4) -> 252 x 56 tokens at C = 96, then /2 per
// stage: 126 x 28 at 192, 63 x 14 at 384, 31 x 7 at 768), batches of clips making N ~ 1e6 rows.
// Paths (ac_convnext_mlp_with, kernels/convnext_mlp.h), each where it is eligible: BF16 "mma" (the
// FlashAttention-style fused kernel, C = 96/192; "mma_alt": the same with AC_MLP_MMA_ALT=1's 64-row CTAs),
// "split" (two GEMMs of ours with fused epilogues, C = 384/768), "wmma" (the first fused kernel), "unfused"
// (cuBLAS GemmEx fp16 -> bias+GELU kernel -> GemmEx -> residual kernel, the baseline), and FP32
// "cublas_fp32" (the validation mode's unfused path). "auto" in a line's "chosen" field names the path
// ac_convnext_mlp takes there.
// One JSON line per case on stdout:
//   {"bench":"gpu_convnext_mlp","precision":"bf16","path":"mma","auto":true,"C":96,"N":...,"ms":...,
//    "tflops":...,"gbytes_per_s":...,"clips_per_s":...}
// ms: median over repetitions (CUDA events); tflops: 16 N C^2 (two GEMMs) / time; gbytes_per_s: the traffic
// the operation cannot avoid (h read, x read and written, weights once) / time, the same count for every path so
// that the numbers compare (the unfused path really moves ~40 C more bytes per row); clips_per_s: clips whose
// stage this MLP runs once per block, per second, i.e. N / tokens-per-clip / time.
// Exits 77 without a GPU. About 10-20 s on an H100.
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fp16.h"
#include "../kernels/convnext_mlp.h"
#include "../kernels/device.h"


static uint64_t g_rng = 7;
static float frand(void) {  // uniform in [-1, 1)
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

// Fills `bytes` of device memory with random values of `scale` (fp32 or fp16): a host pattern of up to 4 MiB,
// then device-to-device doubling, so that a 3 GB buffer costs no host time.
static void fill(void *d, size_t n, int bf, float scale) {
    const size_t es = bf ? 2 : 4, bytes = n * es;
    size_t pat = bytes < ((size_t)4 << 20) ? bytes : ((size_t)4 << 20);
    pat -= pat % es;
    unsigned char *h = malloc(pat);
    if (!h) exit(1);
    for (size_t i = 0; i < pat / es; i++) {
        float v = frand() * scale;
        if (bf) {
            uint16_t b = ac_f32_to_f16(v);
            memcpy(h + 2 * i, &b, 2);
        } else
            memcpy(h + 4 * i, &v, 4);
    }
    CK(cudaMemcpy(d, h, pat, cudaMemcpyHostToDevice));
    free(h);
    for (size_t done = pat; done < bytes;) {
        size_t k = done < bytes - done ? done : bytes - done;
        CK(cudaMemcpy((char *)d + done, d, k, cudaMemcpyDeviceToDevice));
        done += k;
    }
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(void) {
    int ndev = 0;
    if (ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_convnext_mlp: no CUDA device: skipped\n");
        return 77;
    }
    char desc[256];
    if (ac_cuda_device_describe(0, desc, sizeof desc) == AC_OK) fprintf(stderr, "# %s\n", desc);
    const struct {
        int C, T, F;
    } stages[] = {{96, 252, 56}, {192, 126, 28}, {384, 63, 14}, {768, 31, 7}};
    cudaStream_t stream;
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    for (int s = 0; s < 4; s++) {
        const int C = stages[s].C, H = 4 * C;
        const int64_t tokens = (int64_t)stages[s].T * stages[s].F;
        const int64_t clips = (1000000 + tokens - 1) / tokens;
        const int64_t N = clips * tokens;
        for (int bf = 0; bf < 2; bf++) {
            const ac_precision prec = bf ? AC_PREC_BF16 : AC_PREC_FP32;
            const size_t es = bf ? 2 : 4;
            void *h, *w1, *w2, *ws = NULL;
            float *b1, *b2, *gamma, *x;
            const size_t wsb = ac_convnext_mlp_workspace(prec, N, C);
            CK(cudaMalloc(&h, (size_t)N * C * es));
            CK(cudaMalloc(&w1, (size_t)H * C * es));
            CK(cudaMalloc(&w2, (size_t)H * C * es));
            CK(cudaMalloc((void **)&b1, sizeof(float) * H));
            CK(cudaMalloc((void **)&b2, sizeof(float) * C));
            CK(cudaMalloc((void **)&gamma, sizeof(float) * C));
            CK(cudaMalloc((void **)&x, sizeof(float) * (size_t)N * C));
            if (wsb) CK(cudaMalloc(&ws, wsb));
            fill(h, (size_t)N * C, bf, 1.7f);
            fill(w1, (size_t)H * C, bf, 1.7f / sqrtf((float)C));  // pre-activations O(1), as in a trained block
            fill(w2, (size_t)H * C, bf, 1.7f / sqrtf((float)H));
            fill(b1, H, 0, 0.5f);
            fill(b2, C, 0, 0.2f);
            fill(gamma, C, 0, 1e-3f);  // small: x drifts little over the repetitions
            fill(x, (size_t)N * C, 0, 1.0f);
            // mma twice: its default tile shape and AC_MLP_MMA_ALT=1's ("mma_alt", kernels/convnext_mlp.cu)
            const ac_mlp_path paths[] = {AC_MLP_MMA, AC_MLP_MMA, AC_MLP_SPLIT, AC_MLP_WMMA, AC_MLP_UNFUSED};
            const ac_mlp_path chosen = ac_convnext_mlp_choose(prec, C, h, w1, w2, x);
            for (int p = 0; p < 5; p++) {
                if (!ac_convnext_mlp_eligible(paths[p], prec, C, h, w1, w2, x)) continue;
                const int alt = p == 1;
                setenv("AC_MLP_MMA_ALT", alt ? "1" : "0", 1);
                const char *path = !bf ? "cublas_fp32" : alt ? "mma_alt" : ac_mlp_path_name(paths[p]);
                float times[32];
                int reps = 0;
                float total = 0;
                for (int r = -1; r < 32; r++) {  // r = -1: warm-up (cuBLAS handle, kernel attributes, caches)
                    CK(cudaEventRecord(e0, stream));
                    ac_status st = ac_convnext_mlp_with(paths[p], prec, N, C, h, w1, b1, w2, b2, gamma, x, ws, wsb,
                                                        stream);
                    if (st != AC_OK) {
                        fprintf(stderr, "bench_gpu_convnext_mlp: C=%d %s: %s\n", C, path, ac_last_error());
                        return 1;
                    }
                    CK(cudaEventRecord(e1, stream));
                    CK(cudaEventSynchronize(e1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, e0, e1));
                    if (r < 0) continue;
                    times[reps++] = ms;
                    total += ms;
                    if (reps >= 3 && total > 300.0f) break;  // ~0.3 s of measurement per case
                }
                qsort(times, reps, sizeof(float), cmp_f);
                const double ms = times[reps / 2], sec = ms * 1e-3;
                const double flops = 16.0 * (double)N * C * C;
                const double bytes = (double)N * C * (es + 8) + 2.0 * H * C * es + 4.0 * (H + 2 * C);
                printf("{\"bench\":\"gpu_convnext_mlp\",\"precision\":\"%s\",\"path\":\"%s\",\"auto\":%s,"
                       "\"C\":%d,\"N\":%lld,"
                       "\"ms\":%.4f,\"tflops\":%.2f,\"gbytes_per_s\":%.1f,\"clips_per_s\":%.0f,\"reps\":%d}\n",
                       bf ? "bf16" : "fp32", path, paths[p] == chosen && !alt ? "true" : "false", C, (long long)N,
                       ms, flops / sec * 1e-12, bytes / sec * 1e-9,
                       (double)clips / sec, reps);
                fflush(stdout);
            }
            CK(cudaFree(h));
            CK(cudaFree(w1));
            CK(cudaFree(w2));
            CK(cudaFree(b1));
            CK(cudaFree(b2));
            CK(cudaFree(gamma));
            CK(cudaFree(x));
            if (ws) CK(cudaFree(ws));
        }
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaStreamDestroy(stream));
    return 0;
}
