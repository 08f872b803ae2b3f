// The ConvNeXt block MLP's launchers: fused tensor-core kernels (fp16 operands in the reduced precision,
// convnext_mlp_operand.cuh) and the choice between them and the unfused cuBLAS path (convnext_mlp_unfused.cu).
// Mirrors conette convnext.py:22-74 (pwconv1 -> GELU -> pwconv2 -> gamma * . -> residual) as host/model.c's encoder
// loop computes it:
//   x (N, C) fp32 += gamma (C) * (GELU_erf(h (N, C) fp16 @ pwconv1_w (4C, C)^T + pwconv1_b) @ pwconv2_w (C, 4C)^T
//                                + pwconv2_b)
// all row-major (channels-last rows), weights as nn.Linear stores them.
//
// "mma" (convnext_mlp_mma_kernel.cuh, C = 96, 192): FlashAttention-style, each warp keeps its rows' output in
// registers and feeds GEMM1's GELU'd accumulators to GEMM2 as register fragments (PTX mma.sync).
// "split" (convnext_mlp_split_kernel.cuh, C = 384, 768): two GEMMs of ours with the elementwise work in their
// epilogues, the hidden activations written once as fp16.
// "wmma" (convnext_mlp_kernel.cuh, C = 96 .. 768), the first fused kernel, kept as the measured baseline: a CTA
// owns BM rows and walks the 4C hidden units in chunks of BH. Per chunk:
//   GEMM1  hid (BM, BH) = h (BM, C) . W1[chunk]^T   (tensor cores, fp32 accumulators, K split over warps)
//   GELU   bias + erf GELU in fp32, rounded once to fp16 into shared memory
//   GEMM2  out (BM, C) += hid (BM, BH) . W2[:, chunk]^T   (fp32 accumulators held in registers all along)
// then one epilogue adds pwconv2_b, scales by gamma and adds into x. The (N, 4C) hidden activations never leave
// the SM: per row the kernel reads 2C bytes of h and 4C of x and writes 4C of x, where the unfused path moves
// ~40C more (performance.md §6.2). The h tile stays in shared memory for the whole walk; weight chunks are
// staged with cp.async, the next W1 chunk loading during GELU + GEMM2 and the W2 chunk during GEMM1 + GELU.
//
// Register budget: the (BM, C) fp32 accumulator is split over 8 warps as 16x16 WMMA tiles: each warp owns one
// row tile and C/16/(8/(BM/16)) column tiles. BM = 32 for C = 384/768 keeps that at 6/12 tiles = 48/96 fp32
// registers per thread (a 64 x 768 tile would need 192, beyond the 255-register limit with everything else);
// BM = 64 for C = 96/192 (3/6 tiles) halves the weight traffic per row where registers allow.
// Shared memory (bytes): C=96 ~42 K, 192 ~68 K, 384 ~91 K, 768 ~120 K (BH = 16 there, so W1 and W2 chunks fit
// next to the 48 K h tile within the A100's 163 K as well as the H100's 227 K).
#include <cuda_bf16.h>  // mma_16816.cuh's bf16 specialisations
#include <cuda_pipeline.h>
#include <mma.h>
#include <stdint.h>

#include "convnext_mlp_operand.cuh"

#include "common.cuh"
#include <stdlib.h>
#include <string.h>
#include "convnext_mlp.h"
#include "gelu.cuh"

#include "convnext_mlp_kernel.cuh"
#include "mma_16816.cuh"
#include "convnext_mlp_mma_kernel.cuh"
#include "convnext_mlp_split_kernel.cuh"

namespace {

using namespace ac_mlp_fused;

typedef void (*fused_kernel)(int64_t, const op_t *, const op_t *, const float *, const op_t *, const float *,
                             const float *, float *);

// Either fused kernel over N rows, one CTA per K::BM of them (K: its configuration).
template <class K>
ac_status launch_rows(fused_kernel kern, int64_t N, const void *h, const void *w1, const float *b1, const void *w2,
                      const float *b2, const float *gamma, float *x, cudaStream_t stream) {
    const int64_t blocks = CEIL_DIV(N, (int64_t)K::BM);
    if (blocks > 0x7fffffff)
        return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp: N = %lld rows is too many for one launch (hint: split "
                       "the batch)", (long long)N);
    // Above 48 KB of dynamic shared memory a kernel must opt in (ac_smem_optin: once per kernel and device)
    CUDA_CHECK(ac_smem_optin(kern, K::SMEM));
    kern<<<(unsigned)blocks, K::NTHREADS, K::SMEM, stream>>>(N, (const op_t *)h, (const op_t *)w1, b1,
                                                             (const op_t *)w2, b2, gamma, x);
    KERNEL_CHECK();
    return AC_OK;
}

// The split path: the rows in chunks whose fp16 hidden activations (rows, 4C) fit the caller's workspace (sized
// for the unfused path's 28 C bytes per row, of which this needs 8 C).
ac_status run_split(int64_t N, int C, const void *h, const void *w1, const float *b1, const void *w2, const float *b2,
                    const float *gamma, float *x, void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    typedef ac_mlp_split::Cfg K;
    const int H = 4 * C;
    int64_t R = (int64_t)(workspace_bytes / (2 * (size_t)H));
    if (R > N) R = N;
    if (R > (int64_t)K::BM * 65535) R = (int64_t)K::BM * 65535;  // grid.y limit
    if (R < 1 || !workspace)
        return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp split: workspace of %zu bytes holds no hidden row of %d "
                       "fp16 (hint: allocate ac_convnext_mlp_workspace() bytes)", workspace_bytes, H);
    auto k1 = ac_mlp_split::mlp_gemm_kernel<ac_mlp_split::EPI_BIAS_GELU>;
    auto k2 = ac_mlp_split::mlp_gemm_kernel<ac_mlp_split::EPI_SCALE_RESIDUAL>;
    CUDA_CHECK(ac_smem_optin(k1, K::SMEM));
    CUDA_CHECK(ac_smem_optin(k2, K::SMEM));
    op_t *hid = (op_t *)workspace;
    for (int64_t r0 = 0; r0 < N; r0 += R) {
        const int rows = (int)(N - r0 < R ? N - r0 : R);
        const unsigned gy = (unsigned)CEIL_DIV(rows, K::BM);
        k1<<<dim3(H / K::BN, gy), K::NTHREADS, K::SMEM, stream>>>(rows, H, C, (const op_t *)h + r0 * C,
                                                                  (const op_t *)w1, b1, nullptr, hid, nullptr);
        KERNEL_CHECK();
        k2<<<dim3(C / K::BN, gy), K::NTHREADS, K::SMEM, stream>>>(rows, C, H, hid, (const op_t *)w2, b2, gamma, nullptr,
                                                                  x + r0 * C);
        KERNEL_CHECK();
    }
    return AC_OK;
}

}  // namespace

extern "C" ac_status ac_convnext_mlp_check_args(const char *who, ac_precision prec, int64_t N, int C, const void *h,
                                                const void *pwconv1_w, const float *pwconv1_b,
                                                const void *pwconv2_w, const float *pwconv2_b, const float *gamma,
                                                const float *x, const void *workspace, size_t workspace_bytes) {
    if (prec != AC_PREC_FP32 && prec != AC_PREC_BF16)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: unknown precision %d (hint: AC_PREC_FP32 or AC_PREC_BF16)", who,
                       (int)prec);
    if (N < 0) return ac_fail(AC_ERR_INVALID_ARG, "%s: N = %lld rows (hint: N >= 0)", who, (long long)N);
    if (C <= 0 || C % 8 != 0 || C > 65536)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: C = %d channels (hint: a positive multiple of 8 up to 65536, as "
                       "every ConvNeXt width is)", who, C);
    if (N == 0) return AC_OK;
    const struct {
        const void *p;
        const char *name;
    } ptrs[] = {{h, "h"},           {pwconv1_w, "pwconv1_w"}, {pwconv1_b, "pwconv1_b"}, {pwconv2_w, "pwconv2_w"},
                {pwconv2_b, "pwconv2_b"}, {gamma, "gamma"},   {x, "x"}};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        if (!ptrs[i].p) return ac_fail(AC_ERR_INVALID_ARG, "%s: %s is NULL (hint: a device pointer)", who, ptrs[i].name);
    if ((uintptr_t)workspace % 16)  // the split path reads its hidden rows back with 16-byte cp.async
        return ac_fail(AC_ERR_INVALID_ARG, "%s: workspace %p is not 16-byte aligned (hint: pass a cudaMalloc'ed "
                       "buffer, or an offset into one that is a multiple of 16)", who, workspace);
    const size_t need = ac_convnext_mlp_workspace(prec, N, C);
    if (workspace_bytes < need || (need > 0 && !workspace))
        return ac_fail(AC_ERR_INVALID_ARG, "%s: workspace of %zu bytes at %p, %zu needed for N = %lld, C = %d "
                       "(hint: allocate ac_convnext_mlp_workspace() bytes)", who, workspace_bytes, workspace, need,
                       (long long)N, C);
    return AC_OK;
}

// w_op = w rounded to the operand type (saturating); *bad = 1 (a benign race: every writer stores 1) where an
// element is beyond the operand's range (it would round to inf) or not a number
static __global__ void weight_to_op_kernel(const float *__restrict__ w, int64_t n, ac_mlp_op *__restrict__ w_op,
                                           int *__restrict__ bad) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = w[i];
        if (!(fabsf(v) < AC_MLP_OP_INF)) *bad = 1;
        w_op[i] = ac_mlp_op_from_float(v);
    }
}

static ac_status weight_to_op(const float *w, int64_t n, void *w_op, int *d_bad, int *bad, cudaStream_t stream) {
    CUDA_CHECK(cudaMemsetAsync(d_bad, 0, sizeof *d_bad, stream));
    const int64_t blocks = CEIL_DIV(n, (int64_t)256);
    weight_to_op_kernel<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256, 0, stream>>>(w, n, (ac_mlp_op *)w_op,
                                                                                        d_bad);
    KERNEL_CHECK();
    CUDA_CHECK(cudaMemcpyAsync(bad, d_bad, sizeof *bad, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    return AC_OK;
}

extern "C" ac_status ac_convnext_mlp_weight(const char *name, const float *w, int64_t n, void *w_op,
                                            cudaStream_t stream) {
    if (!name || !w || !w_op || n < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp_weight: name %p, w %p, w_op %p, %lld elements (hint: "
                       "device pointers and n >= 0)", (const void *)name, (const void *)w, w_op, (long long)n);
    if (n == 0) return AC_OK;
    int *d_bad = NULL, bad = 0;
    CUDA_CHECK(cudaMalloc(&d_bad, sizeof *d_bad));
    const ac_status st = weight_to_op(w, n, w_op, d_bad, &bad, stream);
    const cudaError_t freed = cudaFree(d_bad);
    if (st != AC_OK) return st;
    CUDA_CHECK(freed);
    if (bad)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: a value that rounds past fp16's largest (65504) or not a number, "
                       "which the BF16 mode's fp16 MLP operands cannot hold (hint: check the checkpoint; "
                       "--precision fp32 runs it as it is)", name);
    return AC_OK;
}

static const char *const PATH_NAMES[] = {"auto", "unfused", "wmma", "mma", "split"};

extern "C" const char *ac_mlp_path_name(ac_mlp_path path) {
    return path >= AC_MLP_AUTO && path <= AC_MLP_SPLIT ? PATH_NAMES[path] : "unknown";
}

extern "C" int ac_convnext_mlp_eligible(ac_mlp_path path, ac_precision prec, int C, const void *h,
                                        const void *pwconv1_w, const void *pwconv2_w, const float *x) {
    switch (path) {
    case AC_MLP_UNFUSED: return prec == AC_PREC_FP32 || prec == AC_PREC_BF16;
    case AC_MLP_WMMA:  // cp.async moves 16 bytes; with C % 8 == 0 every row then starts 16-byte aligned too
        return prec == AC_PREC_BF16 && (C == 96 || C == 192 || C == 384 || C == 768) &&
               ((uintptr_t)h | (uintptr_t)pwconv1_w | (uintptr_t)pwconv2_w) % 16 == 0;
    case AC_MLP_MMA:  // the same, and x is read and written as float2
        return prec == AC_PREC_BF16 && (C == 96 || C == 192) &&
               ((uintptr_t)h | (uintptr_t)pwconv1_w | (uintptr_t)pwconv2_w) % 16 == 0 && (uintptr_t)x % 8 == 0;
    case AC_MLP_SPLIT:  // whole 128-column tiles of both GEMMs (N = 4C, C) and 32-deep K steps
        return prec == AC_PREC_BF16 && C % 128 == 0 &&
               ((uintptr_t)h | (uintptr_t)pwconv1_w | (uintptr_t)pwconv2_w) % 16 == 0 && (uintptr_t)x % 8 == 0;
    default: return 0;
    }
}

// AC_MLP_MMA_ALT=1: the mma path with 64-row CTAs of 4 warps (one 16-row tile per warp) instead of 128-row ones
// (4 warps x 2 tiles at C = 96, 8 warps x 1 at 192): fewer registers and less shared memory per CTA, more CTAs
// per SM, twice the weight reads from L2 per row. Which is faster is for bench_gpu_convnext_mlp to say; read on
// every call, so that the benchmark can switch it.
static int mma_alt(void) {
    const char *v = getenv("AC_MLP_MMA_ALT");
    return v && v[0] == '1';
}

template <class K>
struct tag {
    typedef K type;
};

// The one place where a fused path (mma, wmma) and a width pick the kernel configuration: f(tag<Cfg>, kernel).
// Widths the path is not eligible for (ac_convnext_mlp_eligible) never get here.
template <class F>
static auto with_config(ac_mlp_path path, int C, F &&f) {
    namespace m = ac_mlp_mma;
    if (path == AC_MLP_MMA) {
        if (mma_alt())
            return C == 96 ? f(tag<m::Cfg<96, 4, 1>>(), m::convnext_mlp_mma_kernel<96, 4, 1>)
                           : f(tag<m::Cfg<192, 4, 1>>(), m::convnext_mlp_mma_kernel<192, 4, 1>);
        return C == 96 ? f(tag<m::Cfg<96, 4, 2>>(), m::convnext_mlp_mma_kernel<96, 4, 2>)
                       : f(tag<m::Cfg<192, 8, 1>>(), m::convnext_mlp_mma_kernel<192, 8, 1>);
    }
    switch (C) {  // wmma
    case 96: return f(tag<Cfg<96, 64, 32>>(), convnext_mlp_wmma_kernel<96, 64, 32>);
    case 192: return f(tag<Cfg<192, 64, 32>>(), convnext_mlp_wmma_kernel<192, 64, 32>);
    case 384: return f(tag<Cfg<384, 32, 32>>(), convnext_mlp_wmma_kernel<384, 32, 32>);
    default: return f(tag<Cfg<768, 32, 16>>(), convnext_mlp_wmma_kernel<768, 32, 16>);
    }
}

// Dynamic shared memory a configuration of ours needs (0: none), against the device's opt-in limit: every
// sm_80/sm_90 part has the 136 KB of the largest (mma at C = 192; A100 163 KB, H100 227 KB), an sm_86/sm_89 GPU
// (99 KB, running the sm_80 code) does not, and then takes the unfused path there.
static int smem_need(ac_mlp_path path, int C) {
    if (path == AC_MLP_SPLIT) return ac_mlp_split::Cfg::SMEM;
    if (path != AC_MLP_MMA && path != AC_MLP_WMMA) return 0;
    return with_config(path, C, [](auto t, fused_kernel) { return (int)decltype(t)::type::SMEM; });
}

static ac_status device_fits(ac_mlp_path path, int C, int *fits) {
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    *fits = optin >= smem_need(path, C);
    return AC_OK;
}

// AC_MLP_PATH=unfused|wmma|mma|split: the path every call takes where it is eligible (benchmarks, A/B runs)
static ac_mlp_path env_path(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("AC_MLP_PATH");
        cached = AC_MLP_AUTO;
        for (int p = AC_MLP_UNFUSED; v && p <= AC_MLP_SPLIT; p++)
            if (!strcmp(v, PATH_NAMES[p])) cached = p;
    }
    return (ac_mlp_path)cached;
}

extern "C" ac_mlp_path ac_convnext_mlp_choose(ac_precision prec, int C, const void *h, const void *pwconv1_w,
                                              const void *pwconv2_w, const float *x) {
    // Measured on an H200 (bench_gpu_convnext_mlp, 2026-11-27, ~1e6 rows, ms): the WMMA kernel beat cuBLAS + the
    // GELU pass only at C = 96 (2.45 vs 2.62) and lost at 192, 384, 768 (6.66 vs 5.50, 24.8 vs 12.2, 117 vs 29.5).
    // cuBLAS itself reached 56, 107, 193 and 320 TFLOP/s there: it is held back by the hidden tensor's traffic at
    // the narrow widths, not at 768. So, until a GPU run measures them: the mma kernel (no hidden traffic at all)
    // at C = 96, 192, the split GEMMs (a third of the hidden traffic) at 384, and cuBLAS stays at 768, where it
    // was near its GEMM peak. AC_MLP_PATH picks any path where eligible.
    ac_mlp_path want = env_path();
    if (want == AC_MLP_AUTO)
        want = C == 96 || C == 192 ? AC_MLP_MMA : C <= 384 && C % 128 == 0 ? AC_MLP_SPLIT : AC_MLP_UNFUSED;
    int fits = 0;
    if (want != AC_MLP_UNFUSED && ac_convnext_mlp_eligible(want, prec, C, h, pwconv1_w, pwconv2_w, x) &&
        device_fits(want, C, &fits) == AC_OK && fits)
        return want;
    return AC_MLP_UNFUSED;
}

extern "C" ac_status ac_convnext_mlp_with(ac_mlp_path path, ac_precision prec, int64_t N, int C, const void *h,
                                          const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                          const float *pwconv2_b, const float *gamma, float *x, void *workspace,
                                          size_t workspace_bytes, cudaStream_t stream) {
    ac_status st = ac_convnext_mlp_check_args("convnext_mlp", prec, N, C, h, pwconv1_w, pwconv1_b, pwconv2_w,
                                              pwconv2_b, gamma, x, workspace, workspace_bytes);
    if (st != AC_OK || N == 0) return st;
    if (path == AC_MLP_AUTO)  // its choice is eligible and fits the device already
        path = ac_convnext_mlp_choose(prec, C, h, pwconv1_w, pwconv2_w, x);
    else if (path != AC_MLP_UNFUSED) {
        int fits = 0;
        if (path < AC_MLP_AUTO || path > AC_MLP_SPLIT ||
            !ac_convnext_mlp_eligible(path, prec, C, h, pwconv1_w, pwconv2_w, x))
            return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp: path %s cannot run precision %d, C = %d with these "
                           "pointers (hint: ac_convnext_mlp_eligible says which can; AC_MLP_AUTO chooses)",
                           ac_mlp_path_name(path), (int)prec, C);
        if ((st = device_fits(path, C, &fits)) != AC_OK) return st;
        if (!fits)
            return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp: path %s needs %d bytes of shared memory per block, "
                           "more than this GPU offers (hint: AC_MLP_AUTO falls back to the unfused path)",
                           ac_mlp_path_name(path), smem_need(path, C));
    }
    if (path == AC_MLP_SPLIT)
        return run_split(N, C, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, workspace, workspace_bytes,
                         stream);
    if (path == AC_MLP_MMA || path == AC_MLP_WMMA)  // mma: AC_MLP_MMA_ALT=1 picks the other tile shape
        return with_config(path, C, [&](auto t, fused_kernel k) {
            return launch_rows<typename decltype(t)::type>(k, N, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma,
                                                           x, stream);
        });
    return ac_convnext_mlp_unfused(prec, N, C, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, workspace,
                                   workspace_bytes, stream);
}

extern "C" ac_status ac_convnext_mlp(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                                     const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b,
                                     const float *gamma, float *x, void *workspace, size_t workspace_bytes,
                                     cudaStream_t stream) {
    return ac_convnext_mlp_with(AC_MLP_AUTO, prec, N, C, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x,
                                workspace, workspace_bytes, stream);
}
