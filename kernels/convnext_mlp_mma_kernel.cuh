// The fused ConvNeXt block MLP as one FlashAttention-style tensor-core kernel (fp16 operands, sm_80+), for the narrow
// stages (C = 96, 192) where the hidden activations are most of the encoder's memory traffic. Computes, as
// kernels/convnext_mlp.h states (conette convnext.py:22-74; host/model.c encoder loop):
//   x (N, C) fp32 += gamma * (GELU_erf(h (N, C) fp16 @ pwconv1_w (4C, C)^T + pwconv1_b) @ pwconv2_w (C, 4C)^T
//                             + pwconv2_b)
// Included by kernels/convnext_mlp.cu, and by tests/emu/convnext_mlp_mma_emu.cpp, which runs this source on
// the CPU with ldmatrix/mma emulated lane by lane (kernels/mma_16816.cuh).
//
// Why this shape (the WMMA kernel in convnext_mlp_kernel.cuh passes the hidden chunk through shared memory
// with three CTA barriers per 32 hidden units, and measured ~60 TFLOP/s on an H200):
//  - each warp owns 16 MT rows for the whole kernel; its output accumulators (16 MT x C fp32: 48 registers
//    per 16 rows at C = 96) stay in registers while it walks the 4C hidden units in chunks of BH = 32;
//  - GEMM1's fp32 accumulators of a chunk get bias + GELU and are packed to fp16 in registers, where they are
//    already GEMM2's A fragments (mma_16816.cuh): no shared-memory round trip, no barrier between the GEMMs;
//  - the h tile is loaded once; weight chunks (W1 rows, W2 columns) stream through a 3-stage cp.async ring
//    shared by the CTA's warps, so one __syncthreads per chunk both publishes chunk j and frees chunk j-1's
//    stage for chunk j+2;
//  - shared rows are padded by 16 bytes, so each 8-row ldmatrix phase hits 32 distinct banks.
// Numerics as the WMMA kernel: fp32 accumulation, bias + GELU in fp32, one (saturating) rounding of each hidden value
// to fp16 (convnext_mlp_operand.cuh), then x += gamma * (acc + pwconv2_b).
// Needs cuda_pipeline.h, mma_16816.cuh and ac_gelu_erf_fast (gelu.cuh) before it.
#pragma once

#include "convnext_mlp_operand.cuh"

#ifndef AC_DYNAMIC_SMEM
#define AC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(128) T name[]
#endif

namespace ac_mlp_mma {

typedef ac_mlp_op op_t;

constexpr int round128(int b) { return (b + 127) / 128 * 128; }

// C channels; NW warps per CTA, each owning MT 16-row tiles
template <int C_, int NW_, int MT_>
struct Cfg {
    static constexpr int C = C_, NW = NW_, MT = MT_, H = 4 * C_;
    static constexpr int BH = 32;             // hidden units per chunk: 4 n8 tiles of GEMM1, 2 k16 steps of GEMM2
    static constexpr int BM = NW * 16 * MT;   // rows per CTA
    static constexpr int NTHREADS = 32 * NW;
    static constexpr int NCHUNK = H / BH;
    static constexpr int STAGES = 3;
    // CTAs per SM promised to ptxas. ptxas (CUDA 13, sm_90): C = 96 with 2 row tiles takes 206 registers (96 of
    // them output accumulators), so 2 CTAs of 4 warps per SM (capping it at 168 for a third spills 32 bytes);
    // C = 192 takes 254 (it spills 224 bytes at a cap of 128), so one CTA of 8 warps, which its 136 KB of shared
    // memory allows anyway. With one row tile, 16 x C accumulators: 3 CTAs at C = 96, 2 at 192 (4 warps each).
    static constexpr int MINB = NW == 8 ? 1 : C * MT <= 96 ? 3 : 2;
    static constexpr int LDH = C + 8;   // sH (BM, C), sW1 (BH, C): +16 bytes per row
    static constexpr int LDW = BH + 8;  // sW2 (C, BH)
    static constexpr int W1_STAGE = round128(BH * LDH * 2), W2_STAGE = round128(C * LDW * 2);
    static constexpr int OFF_H = 0;
    static constexpr int OFF_W1 = round128(BM * LDH * 2);
    static constexpr int OFF_W2 = OFF_W1 + STAGES * W1_STAGE;
    static constexpr int SMEM = OFF_W2 + STAGES * W2_STAGE;
    static_assert(C % 16 == 0 && H % BH == 0 && NCHUNK >= 2, "whole k16 steps, n16 pairs and chunks");
};

// one chunk of the weights: W1 rows [j BH, j BH + BH) (each C long) and W2 columns [j BH, j BH + BH) of all C rows.
// The copies per thread are a compile-time count (whole when NTHREADS divides them, as in every configuration the
// launcher uses), so the loops unroll and each copy's offsets depend on threadIdx.x alone; a W1 chunk is one
// contiguous run of BH x C elements, so its source is 8 i elements in. A runtime-bounded loop here cost ~10
// integer instructions per 16-byte copy in every chunk (cuobjdump).
template <class K>
__device__ __forceinline__ void load_chunk(op_t *sW1, op_t *sW2, const op_t *__restrict__ w1,
                                           const op_t *__restrict__ w2, int j) {
    constexpr int per_w1 = K::C / 8, per_w2 = K::BH / 8, n1 = K::BH * per_w1, n2 = K::C * per_w2;
    const op_t *w1j = w1 + (int64_t)j * K::BH * K::C, *w2j = w2 + j * K::BH;
#pragma unroll
    for (int k = 0; k < (n1 + K::NTHREADS - 1) / K::NTHREADS; k++) {
        const int i = threadIdx.x + k * K::NTHREADS;
        if (n1 % K::NTHREADS == 0 || i < n1)
            __pipeline_memcpy_async(sW1 + (i / per_w1) * K::LDH + (i % per_w1) * 8, w1j + 8 * i, 16);
    }
#pragma unroll
    for (int k = 0; k < (n2 + K::NTHREADS - 1) / K::NTHREADS; k++) {
        const int i = threadIdx.x + k * K::NTHREADS, r = i / per_w2, c = (i % per_w2) * 8;
        if (n2 % K::NTHREADS == 0 || i < n2) __pipeline_memcpy_async(sW2 + r * K::LDW + c, w2j + (int64_t)r * K::H + c, 16);
    }
}

template <int C, int NW, int MT>
__global__ void __launch_bounds__(32 * NW, (Cfg<C, NW, MT>::MINB))
    convnext_mlp_mma_kernel(int64_t N, const op_t *__restrict__ h, const op_t *__restrict__ w1,
                            const float *__restrict__ b1, const op_t *__restrict__ w2, const float *__restrict__ b2,
                            const float *__restrict__ gamma, float *__restrict__ x) {
    typedef Cfg<C, NW, MT> K;
    constexpr int NT1 = K::BH / 8;  // GEMM1 n8 tiles per chunk
    constexpr int NT2 = C / 8;      // GEMM2 n8 tiles (output columns)
    AC_DYNAMIC_SMEM(unsigned char, smem);
    op_t *sH = (op_t *)(smem + K::OFF_H);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int64_t row0 = (int64_t)blockIdx.x * K::BM;

    // group 0: the h tile (rows past N zeroed: computed, then dropped) and chunk 0; group 1: chunk 1
    {
        constexpr int per_row = C / 8;
        for (int i = threadIdx.x; i < K::BM * per_row; i += K::NTHREADS) {
            const int r = i / per_row, c = (i % per_row) * 8;
            op_t *d = sH + r * K::LDH + c;
            if (row0 + r < N)
                __pipeline_memcpy_async(d, h + (row0 + r) * C + c, 16);
            else
                *(uint4 *)d = make_uint4(0, 0, 0, 0);
        }
    }
    load_chunk<K>((op_t *)(smem + K::OFF_W1), (op_t *)(smem + K::OFF_W2), w1, w2, 0);
    __pipeline_commit();
    load_chunk<K>((op_t *)(smem + K::OFF_W1 + K::W1_STAGE), (op_t *)(smem + K::OFF_W2 + K::W2_STAGE), w1, w2, 1);
    __pipeline_commit();

    // ldmatrix row addresses, per lane (mma_16816.cuh): A tiles take row lane % 16, column half lane / 16;
    // B pairs (two n8 tiles of a 16-row block of a weight matrix) take row 8 (lane / 16) + lane % 8, k half
    // (lane / 8) % 2
    const int a_row = lane % 16, a_col = (lane / 16) * 8;
    const int b_row = (lane / 16) * 8 + lane % 8, b_col = ((lane / 8) % 2) * 8;
    const op_t *sA = sH + (warp * 16 * MT + a_row) * K::LDH + a_col;

    float o[MT][NT2][4];
    ac_mma::zero_acc(o);

    for (int j = 0; j < K::NCHUNK; j++) {
        // Groups committed so far: 0 .. j + 1 (one per chunk, empty ones past the end), so waiting for all but
        // one lands chunk j; the barrier then publishes every thread's copies and proves that every warp is done
        // with chunk j - 1, whose stage the prefetch of chunk j + 2 reuses.
        __pipeline_wait_prior(1);
        __syncthreads();
        const int s = j % K::STAGES;
        if (j + 2 < K::NCHUNK) {
            const int s2 = (j + 2) % K::STAGES;
            load_chunk<K>((op_t *)(smem + K::OFF_W1 + s2 * K::W1_STAGE), (op_t *)(smem + K::OFF_W2 + s2 * K::W2_STAGE),
                          w1, w2, j + 2);
        }
        __pipeline_commit();
        const op_t *sW1 = (const op_t *)(smem + K::OFF_W1 + s * K::W1_STAGE) + b_row * K::LDH + b_col;
        const op_t *sW2 = (const op_t *)(smem + K::OFF_W2 + s * K::W2_STAGE) + b_row * K::LDW + b_col;

        // GEMM1: acc (16 MT, BH) = h rows . W1 chunk^T, over k = C
        float acc[MT][NT1][4];
        ac_mma::zero_acc(acc);
#pragma unroll 2  // fully unrolled, ptxas keeps more fragments in flight: 216 instead of 206 registers at C = 96
        for (int kk = 0; kk < C / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int m = 0; m < MT; m++) ac_mma::ldmatrix_x4(a[m], sA + m * 16 * K::LDH + kk * 16);
#pragma unroll
            for (int np = 0; np < NT1 / 2; np++) {
                uint32_t b[4];
                ac_mma::ldmatrix_x4(b, sW1 + np * 16 * K::LDH + kk * 16);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    ac_mma::mma_16816<op_t>(acc[m][2 * np], a[m], b);
                    ac_mma::mma_16816<op_t>(acc[m][2 * np + 1], a[m], b + 2);
                }
            }
        }

        // bias + GELU in fp32, packed to fp16 pairs (saturating): GEMM2's A fragments (k16 step q = n8 tiles 2q,
        // 2q + 1)
        uint32_t p[MT][NT1 / 2][4];
#pragma unroll
        for (int n = 0; n < NT1; n++) {
            const int col = j * K::BH + n * 8 + 2 * t;
            const float bb0 = __ldg(b1 + col), bb1 = __ldg(b1 + col + 1);
#pragma unroll
            for (int m = 0; m < MT; m++) {
                acc[m][n][0] = ac_gelu_erf_fast(acc[m][n][0] + bb0);
                acc[m][n][1] = ac_gelu_erf_fast(acc[m][n][1] + bb1);
                acc[m][n][2] = ac_gelu_erf_fast(acc[m][n][2] + bb0);
                acc[m][n][3] = ac_gelu_erf_fast(acc[m][n][3] + bb1);
            }
        }
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int q = 0; q < NT1 / 2; q++)
                ac_mma::pack_a_from_acc<op_t, true>(p[m][q], acc[m][2 * q], acc[m][2 * q + 1]);

        // GEMM2: o (16 MT, C) += hidden chunk . W2[:, chunk]^T, over k = BH
#pragma unroll
        for (int q = 0; q < NT1 / 2; q++)
#pragma unroll
            for (int np = 0; np < NT2 / 2; np++) {
                uint32_t b[4];
                ac_mma::ldmatrix_x4(b, sW2 + np * 16 * K::LDW + q * 16);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    ac_mma::mma_16816<op_t>(o[m][2 * np], p[m][q], b);
                    ac_mma::mma_16816<op_t>(o[m][2 * np + 1], p[m][q], b + 2);
                }
            }
    }
    __pipeline_wait_prior(0);  // only empty groups remain; leave none pending

    // epilogue: x += gamma * (acc + pwconv2_b); lane holds columns 2t, 2t + 1 of rows g and g + 8 of each tile
#pragma unroll
    for (int n = 0; n < NT2; n++) {
        const int col = n * 8 + 2 * t;
        const float g0 = __ldg(gamma + col), g1 = __ldg(gamma + col + 1);
        const float c0 = __ldg(b2 + col), c1 = __ldg(b2 + col + 1);
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int64_t r = row0 + warp * 16 * MT + m * 16 + g + 8 * half;
                if (r < N) {
                    float2 *px = (float2 *)(x + r * C + col);
                    float2 v = *px;
                    v.x += g0 * (o[m][n][2 * half] + c0);
                    v.y += g1 * (o[m][n][2 * half + 1] + c1);
                    *px = v;
                }
            }
    }
}

}  // namespace ac_mlp_mma
