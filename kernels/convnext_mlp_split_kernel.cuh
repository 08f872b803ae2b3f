// The ConvNeXt block MLP for the wide stages (C = 384, 768) as two tensor-core GEMMs of ours (fp16 operands, sm_80+)
// whose epilogues do the elementwise work (conette convnext.py:22-74; host/model.c encoder loop):
//   GEMM1  hid (M, 4C) fp16 = GELU_erf(h (M, C) @ pwconv1_w (4C, C)^T + pwconv1_b)       (EPI_BIAS_GELU)
//   GEMM2  x (M, C) fp32 += gamma * (hid @ pwconv2_w (C, 4C)^T + pwconv2_b)               (EPI_SCALE_RESIDUAL)
// Both are D = A (M, K) . B (N, K)^T with A and B K-contiguous (activations row-major, weights as nn.Linear
// stores them), so ldmatrix reads both operands without a transpose (kernels/mma_16816.cuh).
// Why not one kernel as at C <= 192 (convnext_mlp_mma_kernel.cuh): a warp's output rows must stay in registers
// across the hidden walk, 16 rows x C fp32 = C / 2 registers per lane, which C = 384 and 768 do not fit; and
// re-reading 16 C^2 bytes of weights per small row block costs more L2 traffic than the hidden tensor. Why not
// cuBLAS + separate kernels (convnext_mlp_unfused.cu): there GEMM1 writes fp32, a GELU pass reads it and writes
// fp16, GEMM2 writes fp32 y and a residual pass reads it: 12 bytes per hidden value against 4 here (one fp16 write,
// one read), ~8 C more bytes per row besides.
// Tiles: 128 x 128 per CTA of 8 warps (2 x 4, each 64 x 32: 16 mma per 16-wide k step against 6 ldmatrix), K in
// steps of 32 through a 3-stage cp.async ring, rows padded by 16 bytes (conflict-free ldmatrix phases). Numerics:
// fp32 accumulation; GEMM1 adds the bias and applies GELU in fp32 and rounds once (saturating) to fp16, as the
// fused kernels.
// Included by kernels/convnext_mlp.cu and tests/emu/convnext_mlp_mma_emu.cpp (run on the CPU with ldmatrix/mma
// emulated lane by lane). Needs cuda_pipeline.h, mma_16816.cuh and ac_gelu_erf_fast (gelu.cuh) first.
#pragma once

#include "convnext_mlp_operand.cuh"

#ifndef AC_DYNAMIC_SMEM
#define AC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(128) T name[]
#endif

namespace ac_mlp_split {

typedef ac_mlp_op op_t;

enum { EPI_BIAS_GELU = 0, EPI_SCALE_RESIDUAL = 1 };

struct Cfg {
    static constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3;
    static constexpr int NW = 8, NTHREADS = 32 * NW;
    static constexpr int WM = 64, WN = 32;          // warp tile: warps 2 (M) x 4 (N)
    static constexpr int MT = WM / 16, NT = WN / 8;  // m16 and n8 tiles per warp
    static constexpr int LDS = BK + 8;               // smem row stride (elements): 80 bytes
    static constexpr int A_STAGE = BM * LDS * 2, B_STAGE = BN * LDS * 2;
    static constexpr int SMEM = STAGES * (A_STAGE + B_STAGE);
    static_assert(BM == 2 * WM && BN == 4 * WN && NT % 2 == 0, "8 warps as 2 x 4, n8 tiles in pairs");
};

// K-slice kt of the A rows [m0, m0 + BM) (zeros past M) and of the B rows [n0, n0 + BN) into stage buffers. The
// copies per thread are a compile-time count (2 + 2), so the loops unroll and each copy's row and column depend on
// threadIdx.x alone (as in the mma kernel's load_chunk).
__device__ __forceinline__ void load_stage(op_t *sA, op_t *sB, const op_t *__restrict__ A, const op_t *__restrict__ B,
                                           int M, int K, int m0, int n0, int kt) {
    constexpr int per_row = Cfg::BK / 8;  // 16-byte pieces
    static_assert(Cfg::BM * per_row % Cfg::NTHREADS == 0 && Cfg::BN * per_row % Cfg::NTHREADS == 0, "whole rounds");
#pragma unroll
    for (int k = 0; k < Cfg::BM * per_row / Cfg::NTHREADS; k++) {
        const int i = threadIdx.x + k * Cfg::NTHREADS, r = i / per_row, c = (i % per_row) * 8;
        op_t *d = sA + r * Cfg::LDS + c;
        if (m0 + r < M)
            __pipeline_memcpy_async(d, A + (int64_t)(m0 + r) * K + kt * Cfg::BK + c, 16);
        else
            *(uint4 *)d = make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int k = 0; k < Cfg::BN * per_row / Cfg::NTHREADS; k++) {
        const int i = threadIdx.x + k * Cfg::NTHREADS, r = i / per_row, c = (i % per_row) * 8;
        __pipeline_memcpy_async(sB + r * Cfg::LDS + c, B + (int64_t)(n0 + r) * K + kt * Cfg::BK + c, 16);
    }
}

// grid (N / BN, ceil(M / BM)): CTAs of one row block run next to each other and share its A tile in L2.
// Requires N % BN == 0, K % BK == 0, 16-byte aligned A/B rows (K % 8 == 0), even N (half2 / float2 stores).
template <int EPI>
__global__ void __launch_bounds__(Cfg::NTHREADS, 2)
    mlp_gemm_kernel(int M, int N, int K, const op_t *__restrict__ A, const op_t *__restrict__ B,
                    const float *__restrict__ bias, const float *__restrict__ gamma, op_t *__restrict__ hid,
                    float *__restrict__ x) {
    AC_DYNAMIC_SMEM(unsigned char, smem);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = warp / 4, wn = warp % 4;
    const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
    const int KT = K / Cfg::BK;
#define SA(s) ((op_t *)(smem + (s) * (Cfg::A_STAGE + Cfg::B_STAGE)))
#define SB(s) ((op_t *)(smem + (s) * (Cfg::A_STAGE + Cfg::B_STAGE) + Cfg::A_STAGE))

    load_stage(SA(0), SB(0), A, B, M, K, m0, n0, 0);
    __pipeline_commit();
    if (KT > 1) load_stage(SA(1), SB(1), A, B, M, K, m0, n0, 1);
    __pipeline_commit();

    // ldmatrix row addresses (mma_16816.cuh): A tiles row lane % 16, k half lane / 16; B n8-tile pairs row
    // 8 (lane / 16) + lane % 8, k half (lane / 8) % 2
    const int a_off = (wm * Cfg::WM + lane % 16) * Cfg::LDS + (lane / 16) * 8;
    const int b_off = (wn * Cfg::WN + (lane / 16) * 8 + lane % 8) * Cfg::LDS + ((lane / 8) % 2) * 8;

    float acc[Cfg::MT][Cfg::NT][4];
    ac_mma::zero_acc(acc);

    for (int kt = 0; kt < KT; kt++) {
        // groups committed: 0 .. kt + 1 (empty ones past the end): all but one landed means slice kt has; the
        // barrier publishes it and frees slice kt - 1's stage for the prefetch of kt + 2
        __pipeline_wait_prior(1);
        __syncthreads();
        if (kt + 2 < KT) {
            const int s2 = (kt + 2) % Cfg::STAGES;
            load_stage(SA(s2), SB(s2), A, B, M, K, m0, n0, kt + 2);
        }
        __pipeline_commit();
        const int s = kt % Cfg::STAGES;
        const op_t *sa = SA(s) + a_off, *sb = SB(s) + b_off;
#pragma unroll
        for (int kk = 0; kk < Cfg::BK / 16; kk++) {
            uint32_t a[Cfg::MT][4];
#pragma unroll
            for (int m = 0; m < Cfg::MT; m++) ac_mma::ldmatrix_x4(a[m], sa + m * 16 * Cfg::LDS + kk * 16);
#pragma unroll
            for (int np = 0; np < Cfg::NT / 2; np++) {
                uint32_t b[4];
                ac_mma::ldmatrix_x4(b, sb + np * 16 * Cfg::LDS + kk * 16);
#pragma unroll
                for (int m = 0; m < Cfg::MT; m++) {
                    ac_mma::mma_16816<op_t>(acc[m][2 * np], a[m], b);
                    ac_mma::mma_16816<op_t>(acc[m][2 * np + 1], a[m], b + 2);
                }
            }
        }
    }
    __pipeline_wait_prior(0);
#undef SA
#undef SB

    // epilogue: lane holds columns 2t, 2t + 1 of rows g and g + 8 of each 16 x 8 tile
#pragma unroll
    for (int n = 0; n < Cfg::NT; n++) {
        const int col = n0 + wn * Cfg::WN + n * 8 + 2 * t;
        const float c0 = __ldg(bias + col), c1 = __ldg(bias + col + 1);
        float g0 = 0.f, g1 = 0.f;
        if (EPI == EPI_SCALE_RESIDUAL) g0 = __ldg(gamma + col), g1 = __ldg(gamma + col + 1);
#pragma unroll
        for (int m = 0; m < Cfg::MT; m++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int r = m0 + wm * Cfg::WM + m * 16 + g + 8 * half;
                if (r >= M) continue;
                const float v0 = acc[m][n][2 * half], v1 = acc[m][n][2 * half + 1];
                if (EPI == EPI_BIAS_GELU) {
                    *(uint32_t *)(hid + (int64_t)r * N + col) =
                        ac_mma::pack2_sat<op_t>(ac_gelu_erf_fast(v0 + c0), ac_gelu_erf_fast(v1 + c1));
                } else {
                    float2 *px = (float2 *)(x + (int64_t)r * N + col);
                    float2 o = *px;
                    o.x += g0 * (v0 + c0);
                    o.y += g1 * (v1 + c1);
                    *px = o;
                }
            }
    }
}

}  // namespace ac_mlp_split
