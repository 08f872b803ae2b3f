// The ConvNeXt block MLP fused into one tensor-core kernel (BF16), and the launcher that picks it or the unfused
// cuBLAS path (convnext_mlp_unfused.cu). Mirrors conette convnext.py:22-74 (pwconv1 -> GELU -> pwconv2 ->
// gamma * . -> residual) as host/model.c's encoder loop computes it:
//   x (N, C) fp32 += gamma (C) * (GELU_erf(h (N, C) bf16 @ pwconv1_w (4C, C)^T + pwconv1_b) @ pwconv2_w (C, 4C)^T
//                                + pwconv2_b)
// all row-major (channels-last rows), weights as nn.Linear stores them.
//
// Structure: a CTA owns BM rows and walks the 4C hidden units in chunks of BH. Per chunk:
//   GEMM1  hid (BM, BH) = h (BM, C) . W1[chunk]^T   (tensor cores, fp32 accumulators, K split over warps)
//   GELU   bias + erf GELU in fp32, rounded once to bf16 into shared memory
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
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <mma.h>
#include <stdint.h>

#include "common.cuh"
#include "convnext_mlp.h"

namespace {

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

constexpr int round128(int b) { return (b + 127) / 128 * 128; }
constexpr int cmax(int a, int b) { return a > b ? a : b; }

template <int C_, int BM_, int BH_>
struct Cfg {
    static constexpr int C = C_, BM = BM_, BH = BH_, H = 4 * C_;
    static constexpr int NWARPS = 8, NTHREADS = 32 * NWARPS;
    static constexpr int RT = BM / 16;                     // row tiles
    static constexpr int HT = BH / 16;                     // hidden tiles per chunk
    static constexpr int KSPLIT = NWARPS / (RT * HT);      // GEMM1: warps sharing one output tile, split over K
    static constexpr int KPER = C / KSPLIT;                // GEMM1 K per warp
    static constexpr int CG = NWARPS / RT;                 // GEMM2: warps per row tile
    static constexpr int CTPW = C / 16 / CG;               // GEMM2: column tiles (accumulators) per warp
    static constexpr int NCHUNK = H / BH;
    // Blocks per SM promised to the compiler: caps registers at 128 per thread where the accumulators (24-48
    // floats) leave room, so two CTAs share an SM and one's barriers hide behind the other's math.
    static constexpr int MINB = C >= 768 ? 1 : 2;
    // Row strides in elements. +8 bf16 (16 bytes) staggers rows across banks for the 16-byte-per-row fragment
    // loads; WMMA needs a multiple of 8 (bf16) or 4 (fp32) elements and 32-byte-aligned tile starts, which
    // 16-row tile offsets of these strides keep.
    static constexpr int LDH = C + 8;   // sH (BM, C) and sW1 (BH, C)
    static constexpr int LDW = BH + 8;  // sW2 (C, BH) and sHid (BM, BH)
    static constexpr int LDA = BH + 4;  // sAcc (KSPLIT, BM, BH) fp32
    static constexpr int LDO = C + 4;   // sOut (BM, C) fp32, the epilogue's staging, aliasing everything else
    static constexpr int OFF_H = 0;
    static constexpr int OFF_W1 = OFF_H + round128(BM * LDH * 2);
    static constexpr int OFF_W2 = OFF_W1 + round128(BH * LDH * 2);
    static constexpr int OFF_HID = OFF_W2 + round128(C * LDW * 2);
    static constexpr int OFF_ACC = OFF_HID + round128(BM * LDW * 2);
    static constexpr int LOOP_BYTES = OFF_ACC + round128(KSPLIT * BM * LDA * 4);
    static constexpr int SMEM = cmax(LOOP_BYTES, round128(BM * LDO * 4));

    static_assert(C % 16 == 0 && BM % 16 == 0 && BH % 16 == 0, "WMMA tiles are 16x16x16");
    static_assert(RT * HT * KSPLIT == NWARPS, "GEMM1: exactly one (tile, K part) per warp");
    static_assert(KPER % 16 == 0, "GEMM1: K part a whole number of steps");
    static_assert(NWARPS % RT == 0 && (C / 16) % CG == 0, "GEMM2: column tiles split evenly");
    static_assert(H % BH == 0, "hidden chunks");
};

// Copies rows x cols bf16 (cols % 8 == 0, 16-byte aligned rows) global -> shared with cp.async, 16 bytes each.
template <int NTHREADS>
__device__ __forceinline__ void copy_tile_async(bf16 *dst, int ldd, const bf16 *src, int64_t lds, int rows,
                                                int cols) {
    const int per_row = cols / 8;
    for (int i = threadIdx.x; i < rows * per_row; i += NTHREADS) {
        const int r = i / per_row, c = (i % per_row) * 8;
        __pipeline_memcpy_async(dst + r * ldd + c, src + r * lds + c, 16);
    }
}

template <int C, int BM, int BH>
__global__ void __launch_bounds__(256, (Cfg<C, BM, BH>::MINB))
    convnext_mlp_bf16_kernel(int64_t N, const bf16 *__restrict__ h, const bf16 *__restrict__ w1,
                             const float *__restrict__ b1, const bf16 *__restrict__ w2, const float *__restrict__ b2,
                             const float *__restrict__ gamma, float *__restrict__ x) {
    typedef Cfg<C, BM, BH> K;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sH = (bf16 *)(smem + K::OFF_H);
    bf16 *sW1 = (bf16 *)(smem + K::OFF_W1);
    bf16 *sW2 = (bf16 *)(smem + K::OFF_W2);
    bf16 *sHid = (bf16 *)(smem + K::OFF_HID);
    float *sAcc = (float *)(smem + K::OFF_ACC);
    float *sOut = (float *)smem;

    const int warp = threadIdx.x / 32;
    const int64_t row0 = (int64_t)blockIdx.x * BM;

    // h tile (rows past N zeroed: their results are computed and dropped) and W1 chunk 0: group 0.
    {
        constexpr int per_row = C / 8;
        for (int i = threadIdx.x; i < BM * per_row; i += K::NTHREADS) {
            const int r = i / per_row, c = (i % per_row) * 8;
            bf16 *d = sH + r * K::LDH + c;
            if (row0 + r < N)
                __pipeline_memcpy_async(d, h + (row0 + r) * C + c, 16);
            else
                *(uint4 *)d = make_uint4(0, 0, 0, 0);
        }
    }
    copy_tile_async<K::NTHREADS>(sW1, K::LDH, w1, C, BH, C);
    __pipeline_commit();

    // GEMM1 role: one 16x16 tile of the chunk's hidden block, one K part.
    const int g1_tile = warp % (K::RT * K::HT), g1_ks = warp / (K::RT * K::HT);
    const int g1_rt = g1_tile / K::HT, g1_ht = g1_tile % K::HT;
    // GEMM2 role: one row tile, CTPW column tiles (cg, cg + CG, ...).
    const int g2_rt = warp % K::RT, g2_cg = warp / K::RT;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[K::CTPW];
#pragma unroll
    for (int i = 0; i < K::CTPW; i++) wmma::fill_fragment(acc[i], 0.0f);

    for (int j = 0; j < K::NCHUNK; j++) {
        const int hc = j * BH;
        // W2[:, hc:hc+BH] -> sW2 (free: the previous GEMM2 ended with a barrier).
        copy_tile_async<K::NTHREADS>(sW2, K::LDW, w2 + hc, K::H, C, BH);
        __pipeline_commit();
        __pipeline_wait_prior(1);  // everything but this W2 chunk: the h tile and W1 chunk j
        __syncthreads();

        {  // GEMM1
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> a1;
            wmma::fill_fragment(a1, 0.0f);
            const bf16 *pa = sH + g1_rt * 16 * K::LDH + g1_ks * K::KPER;
            const bf16 *pb = sW1 + g1_ht * 16 * K::LDH + g1_ks * K::KPER;
#pragma unroll 4
            for (int k = 0; k < K::KPER; k += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, pa + k, K::LDH);
                wmma::load_matrix_sync(fb, pb + k, K::LDH);
                wmma::mma_sync(a1, fa, fb, a1);
            }
            wmma::store_matrix_sync(sAcc + (g1_ks * BM + g1_rt * 16) * K::LDA + g1_ht * 16, a1, K::LDA,
                                    wmma::mem_row_major);
        }
        __syncthreads();  // sW1 no longer read, sAcc complete

        if (j + 1 < K::NCHUNK) {
            copy_tile_async<K::NTHREADS>(sW1, K::LDH, w1 + (int64_t)(hc + BH) * C, C, BH, C);
            __pipeline_commit();
        }

        // bias + GELU in fp32 (the K parts summed first: h.W^T, then + b, as nn.Linear), one rounding to bf16.
        for (int i = threadIdx.x; i < BM * BH; i += K::NTHREADS) {
            const int m = i / BH, n = i % BH;
            float v = sAcc[m * K::LDA + n];
#pragma unroll
            for (int s = 1; s < K::KSPLIT; s++) v += sAcc[(s * BM + m) * K::LDA + n];
            sHid[m * K::LDW + n] = __float2bfloat16_rn(ac_mlp_gelu_erf(v + b1[hc + n]));
        }
        if (j + 1 < K::NCHUNK)
            __pipeline_wait_prior(1);  // W2 chunk j landed; W1 chunk j+1 may still be in flight
        else
            __pipeline_wait_prior(0);
        __syncthreads();  // sHid and sW2 complete

#pragma unroll
        for (int kk = 0; kk < BH; kk += 16) {  // GEMM2
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::load_matrix_sync(fa, sHid + g2_rt * 16 * K::LDW + kk, K::LDW);
#pragma unroll
            for (int i = 0; i < K::CTPW; i++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
                wmma::load_matrix_sync(fb, sW2 + (g2_cg + i * K::CG) * 16 * K::LDW + kk, K::LDW);
                wmma::mma_sync(acc[i], fa, fb, acc[i]);
            }
        }
        __syncthreads();  // sW2 and sHid free for the next chunk
    }

    // Epilogue: accumulators -> shared (element order inside a fragment is opaque), then coalesced rows of x.
#pragma unroll
    for (int i = 0; i < K::CTPW; i++)
        wmma::store_matrix_sync(sOut + g2_rt * 16 * K::LDO + (g2_cg + i * K::CG) * 16, acc[i], K::LDO,
                                wmma::mem_row_major);
    __syncthreads();
    for (int i = threadIdx.x; i < BM * C; i += K::NTHREADS) {
        const int m = i / C, c = i % C;
        if (row0 + m < N) {
            float *px = x + (row0 + m) * C + c;
            *px += gamma[c] * (sOut[m * K::LDO + c] + b2[c]);
        }
    }
}

template <int C, int BM, int BH>
ac_status launch_fused(int64_t N, const void *h, const void *w1, const float *b1, const void *w2, const float *b2,
                       const float *gamma, float *x, cudaStream_t stream) {
    typedef Cfg<C, BM, BH> K;
    auto kern = convnext_mlp_bf16_kernel<C, BM, BH>;
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, K::SMEM));
    const int64_t blocks = CEIL_DIV(N, (int64_t)BM);
    if (blocks > 0x7fffffff)
        return ac_fail(AC_ERR_INVALID_ARG, "convnext_mlp: N = %lld rows is too many for one launch (hint: split "
                       "the batch)", (long long)N);
    kern<<<(unsigned)blocks, K::NTHREADS, K::SMEM, stream>>>(N, (const bf16 *)h, (const bf16 *)w1, b1,
                                                             (const bf16 *)w2, b2, gamma, x);
    KERNEL_CHECK();
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
    if (C <= 0 || C % 8 != 0)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: C = %d channels (hint: a positive multiple of 8, as every "
                       "ConvNeXt width is)", who, C);
    if (N == 0) return AC_OK;
    const struct {
        const void *p;
        const char *name;
    } ptrs[] = {{h, "h"},           {pwconv1_w, "pwconv1_w"}, {pwconv1_b, "pwconv1_b"}, {pwconv2_w, "pwconv2_w"},
                {pwconv2_b, "pwconv2_b"}, {gamma, "gamma"},   {x, "x"}};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        if (!ptrs[i].p) return ac_fail(AC_ERR_INVALID_ARG, "%s: %s is NULL (hint: a device pointer)", who, ptrs[i].name);
    const size_t need = ac_convnext_mlp_workspace(prec, N, C);
    if (workspace_bytes < need || (need > 0 && !workspace))
        return ac_fail(AC_ERR_INVALID_ARG, "%s: workspace of %zu bytes at %p, %zu needed for N = %lld, C = %d "
                       "(hint: allocate ac_convnext_mlp_workspace() bytes)", who, workspace_bytes, workspace, need,
                       (long long)N, C);
    return AC_OK;
}

extern "C" int ac_convnext_mlp_is_fused(ac_precision prec, int C, const void *h, const void *pwconv1_w,
                                        const void *pwconv2_w) {
    if (prec != AC_PREC_BF16) return 0;
    if (C != 96 && C != 192 && C != 384 && C != 768) return 0;
    // cp.async moves 16 bytes; with C % 8 == 0 every row then starts 16-byte aligned too.
    return ((uintptr_t)h | (uintptr_t)pwconv1_w | (uintptr_t)pwconv2_w) % 16 == 0;
}

extern "C" ac_status ac_convnext_mlp(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                                     const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b,
                                     const float *gamma, float *x, void *workspace, size_t workspace_bytes,
                                     cudaStream_t stream) {
    ac_status st = ac_convnext_mlp_check_args("convnext_mlp", prec, N, C, h, pwconv1_w, pwconv1_b, pwconv2_w,
                                              pwconv2_b, gamma, x, workspace, workspace_bytes);
    if (st != AC_OK || N == 0) return st;
    if (!ac_convnext_mlp_is_fused(prec, C, h, pwconv1_w, pwconv2_w))
        return ac_convnext_mlp_unfused(prec, N, C, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x,
                                       workspace, workspace_bytes, stream);
    switch (C) {
    case 96: return launch_fused<96, 64, 32>(N, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, stream);
    case 192: return launch_fused<192, 64, 32>(N, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, stream);
    case 384: return launch_fused<384, 32, 32>(N, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, stream);
    default: return launch_fused<768, 32, 16>(N, h, pwconv1_w, pwconv1_b, pwconv2_w, pwconv2_b, gamma, x, stream);
    }
}
