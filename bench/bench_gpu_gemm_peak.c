// Benchmark: the two ceilings every GPU figure of this project is read against (device README METHOD.md, "two
// numbers first"): the matrix-unit rate, as the best cuBLAS/cuBLASLt GEMM of a large square problem reaches it,
// and the device-memory bandwidth, as a large device-to-device copy reaches it.
//   bf16: cuBLASLt, A (M, K) and B (K, N) bf16, fp32 accumulate (CUBLAS_COMPUTE_32F), C bf16, 8192^3 by default
//   tf32: cublasSgemm in CUBLAS_TF32_TENSOR_OP_MATH (what "float32" convolutions in PyTorch get by default)
//   fp32: cublasSgemm in CUBLAS_PEDANTIC_MATH (true float32 FMA, no tensor cores)
//   copy: cudaMemcpyAsync device to device of 1 GiB, bytes read + bytes written
//   pcie: cudaMemcpyAsync host to device and device to host of 256 MiB, from and to pinned (cudaMallocHost) and
//         pageable (malloc) host memory: the bound on feeding PCM to the encoder (it stages into pinned memory)
// Column-major (cuBLAS's convention); the shapes are square, so layouts change nothing here.
// Inputs are uniform random in [-1, 1) (never zeros: zeros run faster than real data), the output is poisoned
// with NaN before the timed runs, and 16 output elements are checked against a double dot product on the host.
// Timing: CUDA events around `iters` calls after `warmup` calls; TFLOP/s = 2 M N K / time.
// Output: one JSON line per measurement on stdout, {"bench":"gpu_gemm_peak","precision":..,"m":..,"n":..,"k":..,
// "ms":..,"tflops":..,"device":..}, {"bench":"gpu_copy_peak","gbytes_per_s":..,...} and {"bench":"gpu_pcie_peak",
// "direction":"h2d"|"d2h","host":"pinned"|"pageable","gbytes_per_s":..,...}; human text on stderr.
// Exits 77 when there is no GPU, 1 on any CUDA/cuBLAS error or a failed check.
// usage: bench_gpu_gemm_peak [--n 8192] [--iters 20] [--warmup 3]
#include "bench_util.h"
#include "bf16.h"
#include "device.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CB(call)                                                                                           \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                 \
            fprintf(stderr, "bench_gpu_gemm_peak: %s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__,      \
                    #call, (int)s_);                                                                       \
            exit(1);                                                                                       \
        }                                                                                                  \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float uniform(void) {  // xorshift64*, [-1, 1)
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545f4914f6cdd1dull) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

typedef struct {
    int n, iters, warmup;
    char device[256];
} cfg;

static void emit(const cfg *c, const char *prec, double ms, double max_err_share) {
    double tflops = 2.0 * (double)c->n * c->n * c->n / (ms * 1e-3) / 1e12;
    printf("{\"bench\":\"gpu_gemm_peak\",\"precision\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"ms\":%.4f,"
           "\"tflops\":%.1f,\"iters\":%d,\"check_share_of_tolerance\":%.3g,\"device\":\"%s\"}\n",
           prec, c->n, c->n, c->n, ms, tflops, c->iters, max_err_share, c->device);
    fflush(stdout);
    fprintf(stderr, "  %-5s %dx%dx%d: %.3f ms, %.1f TFLOP/s (check: %.3g of tolerance)\n", prec, c->n, c->n, c->n,
            ms, tflops, max_err_share);
}

// 16 sampled outputs against double dot products of the values the GPU saw (with bf16_in, the inputs rounded to
// bf16 as they were uploaded). tol_rel scales sum|a_k b_k| (accumulation and input rounding), out_rel scales |ref|
// (rounding of the stored output). Returns the worst error as a share of its tolerance; NaN (an unwritten or
// poisoned element) gives +inf.
static double check(int n, const float *a, const float *b, const float *c, int bf16_in, double tol_rel,
                    double out_rel) {
    double worst = 0;
    uint64_t s = 12345;
    for (int t = 0; t < 16; t++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((s >> 33) % (uint64_t)n), j = (int)((s >> 13) % (uint64_t)n);
        if (t == 0) i = j = 0;
        if (t == 1) i = j = n - 1;
        double ref = 0, mag = 0;
        for (int k = 0; k < n; k++) {  // column-major: A(i,k) = a[i + k n], B(k,j) = b[k + j n]
            float x = a[(size_t)i + (size_t)k * n], y = b[(size_t)k + (size_t)j * n];
            if (bf16_in) x = ac_bf16_to_f32(ac_f32_to_bf16(x)), y = ac_bf16_to_f32(ac_f32_to_bf16(y));
            double p = (double)x * (double)y;
            ref += p;
            mag += fabs(p);
        }
        double got = c[(size_t)i + (size_t)j * n];
        if (!isfinite(got)) return INFINITY;
        double tol = tol_rel * mag + out_rel * fabs(ref) + 1e-30;
        double share = fabs(got - ref) / tol;
        if (share > worst) worst = share;
    }
    return worst;
}

static double time_events(cudaEvent_t e0, cudaEvent_t e1, int iters) {
    float ms = 0;
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return (double)ms / iters;
}

static int gemm_bf16(const cfg *c, const float *ha, const float *hb, float *hc) {
    const int n = c->n;
    const size_t nn = (size_t)n * n;
    uint16_t *h16 = malloc(nn * sizeof *h16);
    void *da, *db, *dc, *ws;
    const size_t ws_size = 64u << 20;
    if (!h16) return fprintf(stderr, "out of host memory\n"), 1;
    CK(cudaMalloc(&da, nn * 2));
    CK(cudaMalloc(&db, nn * 2));
    CK(cudaMalloc(&dc, nn * 2));
    CK(cudaMalloc(&ws, ws_size));
    for (size_t i = 0; i < nn; i++) h16[i] = ac_f32_to_bf16(ha[i]);
    CK(cudaMemcpy(da, h16, nn * 2, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < nn; i++) h16[i] = ac_f32_to_bf16(hb[i]);
    CK(cudaMemcpy(db, h16, nn * 2, cudaMemcpyHostToDevice));
    CK(cudaMemset(dc, 0xff, nn * 2));  // 0xffff: a bf16 NaN

    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulHeuristicResult_t heur[8];
    int found = 0;
    CB(cublasLtCreate(&lt));
    CB(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CB(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, n, n, n));
    CB(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, n, n, n));
    CB(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, n, n));
    CB(cublasLtMatmulPreferenceCreate(&pref));
    CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_size,
                                            sizeof ws_size));
    CB(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 8, heur, &found));
    if (found == 0) {
        fprintf(stderr, "bench_gpu_gemm_peak: cuBLASLt found no bf16 algorithm\n");
        return 1;
    }
    const float alpha = 1.0f, beta = 0.0f;
    // the heuristic's first choice, then the best of the others by a short timing (cuBLASLt's first pick is not
    // always its fastest on a given card)
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    int best = 0;
    double best_ms = INFINITY;
    for (int a = 0; a < found && a < 4; a++) {
        for (int w = 0; w < c->warmup; w++)
            CB(cublasLtMatmul(lt, op, &alpha, da, la, db, lb, &beta, dc, lc, dc, lc, &heur[a].algo, ws, ws_size, 0));
        CK(cudaEventRecord(e0, 0));
        for (int it = 0; it < c->iters; it++)
            CB(cublasLtMatmul(lt, op, &alpha, da, la, db, lb, &beta, dc, lc, dc, lc, &heur[a].algo, ws, ws_size, 0));
        CK(cudaEventRecord(e1, 0));
        double ms = time_events(e0, e1, c->iters);
        fprintf(stderr, "  bf16 algorithm %d of %d: %.3f ms\n", a, found, ms);
        if (ms < best_ms) best_ms = ms, best = a;
    }
    // the check runs on a fresh output from the chosen algorithm
    CK(cudaMemset(dc, 0xff, nn * 2));
    CB(cublasLtMatmul(lt, op, &alpha, da, la, db, lb, &beta, dc, lc, dc, lc, &heur[best].algo, ws, ws_size, 0));
    CK(cudaGetLastError());
    CK(cudaMemcpy(h16, dc, nn * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < nn; i++) hc[i] = ac_bf16_to_f32(h16[i]);
    // fp32 accumulation over K terms: a few K * 2^-24 relative to sum|ab| (bound, loose); output rounded to
    // bf16: 2^-9 relative, 2^-8 allowed.
    double share = check(n, ha, hb, hc, 1, 4.0 * n * 0x1p-24, 0x1p-8);
    emit(c, "bf16", best_ms, share);
    CB(cublasLtMatmulPreferenceDestroy(pref));
    CB(cublasLtMatrixLayoutDestroy(la));
    CB(cublasLtMatrixLayoutDestroy(lb));
    CB(cublasLtMatrixLayoutDestroy(lc));
    CB(cublasLtMatmulDescDestroy(op));
    CB(cublasLtDestroy(lt));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(da));
    CK(cudaFree(db));
    CK(cudaFree(dc));
    CK(cudaFree(ws));
    free(h16);
    return share <= 1.0 ? 0 : (fprintf(stderr, "bench_gpu_gemm_peak: bf16 check FAILED\n"), 1);
}

static int gemm_f32(const cfg *c, const float *ha, const float *hb, float *hc, int tf32) {
    const int n = c->n;
    const size_t nn = (size_t)n * n;
    float *da, *db, *dc;
    CK(cudaMalloc((void **)&da, nn * 4));
    CK(cudaMalloc((void **)&db, nn * 4));
    CK(cudaMalloc((void **)&dc, nn * 4));
    CK(cudaMemcpy(da, ha, nn * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, hb, nn * 4, cudaMemcpyHostToDevice));
    cublasHandle_t h;
    CB(cublasCreate(&h));
    CB(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    const float alpha = 1.0f, beta = 0.0f;
    // true fp32 runs ~15x slower than tf32: fewer timed calls keep the whole benchmark short
    const int iters = tf32 ? c->iters : (c->iters + 3) / 4;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int w = 0; w < c->warmup; w++) CB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, da, n, db, n, &beta, dc, n));
    CK(cudaEventRecord(e0, 0));
    for (int it = 0; it < iters; it++)
        CB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, da, n, db, n, &beta, dc, n));
    CK(cudaEventRecord(e1, 0));
    double ms = time_events(e0, e1, iters);
    CK(cudaMemset(dc, 0xff, nn * 4));  // 0xffffffff: a float NaN
    CB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, da, n, db, n, &beta, dc, n));
    CK(cudaGetLastError());
    CK(cudaMemcpy(hc, dc, nn * 4, cudaMemcpyDeviceToHost));
    // fp32: K * 2^-24 relative to sum|ab| (loose bound of the accumulation); tf32: inputs rounded to 10 mantissa
    // bits, 2^-11 each, so 2 * 2^-11 per product, 2^-9 allowed.
    double share = check(n, ha, hb, hc, 0, tf32 ? 0x1p-9 : 4.0 * n * 0x1p-24, 0);
    cfg c2 = *c;
    c2.iters = iters;
    emit(&c2, tf32 ? "tf32" : "fp32", ms, share);
    CB(cublasDestroy(h));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(da));
    CK(cudaFree(db));
    CK(cudaFree(dc));
    return share <= 1.0 ? 0 : (fprintf(stderr, "bench_gpu_gemm_peak: %s check FAILED\n", tf32 ? "tf32" : "fp32"), 1);
}

static int copy_peak(const cfg *c) {
    const size_t bytes = (size_t)1 << 30;
    void *src, *dst;
    CK(cudaMalloc(&src, bytes));
    CK(cudaMalloc(&dst, bytes));
    CK(cudaMemset(src, 0x5a, bytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int w = 0; w < c->warmup; w++) CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
    CK(cudaEventRecord(e0, 0));
    for (int it = 0; it < c->iters; it++) CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
    CK(cudaEventRecord(e1, 0));
    double ms = time_events(e0, e1, c->iters);
    double gbs = 2.0 * (double)bytes / (ms * 1e-3) / 1e9;
    printf("{\"bench\":\"gpu_copy_peak\",\"bytes\":%zu,\"ms\":%.4f,\"gbytes_per_s\":%.1f,\"iters\":%d,"
           "\"device\":\"%s\"}\n", bytes, ms, gbs, c->iters, c->device);
    fflush(stdout);
    fprintf(stderr, "  copy  1 GiB device to device: %.3f ms, %.0f GB/s (read + write)\n", ms, gbs);
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(src));
    CK(cudaFree(dst));
    return 0;
}

static int pcie_peak(const cfg *c) {
    const size_t bytes = (size_t)256 << 20;
    void *dev, *pinned, *pageable = malloc(bytes);
    if (!pageable) return fprintf(stderr, "out of host memory\n"), 1;
    memset(pageable, 0x5a, bytes);  // touched: the pages exist before the timing
    CK(cudaMalloc(&dev, bytes));
    CK(cudaMallocHost(&pinned, bytes));
    memset(pinned, 0x5a, bytes);
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    const int iters = c->iters < 10 ? c->iters : 10;
    for (int k = 0; k < 4; k++) {
        const int h2d = k < 2;
        void *host = k % 2 ? pageable : pinned;
        void *dst = h2d ? dev : host;
        const void *src = h2d ? host : dev;
        const enum cudaMemcpyKind kind = h2d ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
        for (int w = 0; w < (c->warmup ? 1 : 0); w++) CK(cudaMemcpyAsync(dst, src, bytes, kind, 0));
        CK(cudaEventRecord(e0, 0));
        for (int it = 0; it < iters; it++) CK(cudaMemcpyAsync(dst, src, bytes, kind, 0));
        CK(cudaEventRecord(e1, 0));
        const double ms = time_events(e0, e1, iters), gbs = (double)bytes / (ms * 1e-3) / 1e9;
        printf("{\"bench\":\"gpu_pcie_peak\",\"direction\":\"%s\",\"host\":\"%s\",\"bytes\":%zu,\"ms\":%.4f,"
               "\"gbytes_per_s\":%.2f,\"iters\":%d,\"device\":\"%s\"}\n", h2d ? "h2d" : "d2h",
               k % 2 ? "pageable" : "pinned", bytes, ms, gbs, iters, c->device);
        fflush(stdout);
        fprintf(stderr, "  pcie  256 MiB %s, %s host memory: %.3f ms, %.1f GB/s\n", h2d ? "host to device" : "device to host",
                k % 2 ? "pageable" : "pinned", ms, gbs);
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFreeHost(pinned));
    CK(cudaFree(dev));
    free(pageable);
    return 0;
}

int main(int argc, char **argv) {
    cfg c = {.n = 8192, .iters = 20, .warmup = 3};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--n")) c.n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--iters")) c.iters = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--warmup")) c.warmup = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gpu_gemm_peak [--n 8192] [--iters 20] [--warmup 3]\n");
            return 2;
        }
    }
    if (c.n < 16 || c.n > 32768 || c.iters < 1 || c.warmup < 0) {
        fprintf(stderr, "bench_gpu_gemm_peak: --n in [16, 32768], --iters >= 1, --warmup >= 0\n");
        return 2;
    }
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_gemm_peak: no CUDA device: skipped\n");
        return 77;
    }
    if (ac_cuda_device_describe(0, c.device, sizeof c.device) != AC_OK) snprintf(c.device, sizeof c.device, "cuda:0");
    bench_json_safe(c.device);
    CK(cudaSetDevice(0));
    fprintf(stderr, "bench_gpu_gemm_peak: %s\n", c.device);
    const size_t nn = (size_t)c.n * c.n;
    float *ha = malloc(nn * sizeof *ha), *hb = malloc(nn * sizeof *hb), *hc = malloc(nn * sizeof *hc);
    if (!ha || !hb || !hc) return fprintf(stderr, "out of host memory\n"), 1;
    for (size_t i = 0; i < nn; i++) ha[i] = uniform();
    for (size_t i = 0; i < nn; i++) hb[i] = uniform();
    int rc = 0;
    rc |= gemm_bf16(&c, ha, hb, hc);
    rc |= gemm_f32(&c, ha, hb, hc, 1);
    rc |= gemm_f32(&c, ha, hb, hc, 0);
    rc |= copy_peak(&c);
    rc |= pcie_peak(&c);
    free(ha);
    free(hb);
    free(hc);
    return rc;
}
