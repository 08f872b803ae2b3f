// The fused ConvNeXt block MLP kernel (WMMA, fp16 operands: convnext_mlp_operand.cuh) and its tile
// configuration; included by kernels/convnext_mlp.cu (see there for the structure, layouts and the upstream
// lines it mirrors) and by tests/emu/convnext_mlp_emu.cpp, which runs this same code on the CPU (one host thread per CUDA thread, WMMA and
// cp.async emulated) so that the index arithmetic is checked without a GPU. Needs cuda_pipeline.h,
// mma.h (or the emulator's stand-ins) and ac_gelu_erf_fast (gelu.cuh) before it.
#pragma once

#include "convnext_mlp_operand.cuh"

namespace ac_mlp_fused {

using namespace nvcuda;
typedef ac_mlp_op op_t;

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
    // Row strides in elements. +8 fp16 (16 bytes) staggers rows across banks for the 16-byte-per-row fragment
    // loads; WMMA needs a multiple of 8 (16-bit types) or 4 (fp32) elements and 32-byte-aligned tile starts, which
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

// Copies rows x cols 16-bit values (cols % 8 == 0, 16-byte aligned rows) global -> shared with cp.async, 16 bytes each.
template <int NTHREADS>
__device__ __forceinline__ void copy_tile_async(op_t *dst, int ldd, const op_t *src, int64_t lds, int rows,
                                                int cols) {
    const int per_row = cols / 8;
    for (int i = threadIdx.x; i < rows * per_row; i += NTHREADS) {
        const int r = i / per_row, c = (i % per_row) * 8;
        __pipeline_memcpy_async(dst + r * ldd + c, src + r * lds + c, 16);
    }
}

template <int C, int BM, int BH>
__global__ void __launch_bounds__(256, (Cfg<C, BM, BH>::MINB))
    convnext_mlp_wmma_kernel(int64_t N, const op_t *__restrict__ h, const op_t *__restrict__ w1,
                             const float *__restrict__ b1, const op_t *__restrict__ w2, const float *__restrict__ b2,
                             const float *__restrict__ gamma, float *__restrict__ x) {
    typedef Cfg<C, BM, BH> K;
    extern __shared__ __align__(128) unsigned char smem[];
    op_t *sH = (op_t *)(smem + K::OFF_H);
    op_t *sW1 = (op_t *)(smem + K::OFF_W1);
    op_t *sW2 = (op_t *)(smem + K::OFF_W2);
    op_t *sHid = (op_t *)(smem + K::OFF_HID);
    float *sAcc = (float *)(smem + K::OFF_ACC);
    float *sOut = (float *)smem;

    const int warp = threadIdx.x / 32;
    const int64_t row0 = (int64_t)blockIdx.x * BM;

    // h tile (rows past N zeroed: their results are computed and dropped) and W1 chunk 0: group 0.
    {
        constexpr int per_row = C / 8;
        for (int i = threadIdx.x; i < BM * per_row; i += K::NTHREADS) {
            const int r = i / per_row, c = (i % per_row) * 8;
            op_t *d = sH + r * K::LDH + c;
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
            const op_t *pa = sH + g1_rt * 16 * K::LDH + g1_ks * K::KPER;
            const op_t *pb = sW1 + g1_ht * 16 * K::LDH + g1_ks * K::KPER;
#pragma unroll 4
            for (int k = 0; k < K::KPER; k += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, op_t, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, op_t, wmma::col_major> fb;
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

        // bias + GELU in fp32 (the K parts summed first: h.W^T, then + b, as nn.Linear), one (saturating)
        // rounding to fp16.
        for (int i = threadIdx.x; i < BM * BH; i += K::NTHREADS) {
            const int m = i / BH, n = i % BH;
            float v = sAcc[m * K::LDA + n];
#pragma unroll
            for (int s = 1; s < K::KSPLIT; s++) v += sAcc[(s * BM + m) * K::LDA + n];
            sHid[m * K::LDW + n] = ac_mlp_op_from_float(ac_gelu_erf_fast(v + b1[hc + n]));
        }
        if (j + 1 < K::NCHUNK)
            __pipeline_wait_prior(1);  // W2 chunk j landed; W1 chunk j+1 may still be in flight
        else
            __pipeline_wait_prior(0);
        __syncthreads();  // sHid and sW2 complete

#pragma unroll
        for (int kk = 0; kk < BH; kk += 16) {  // GEMM2
            wmma::fragment<wmma::matrix_a, 16, 16, 16, op_t, wmma::row_major> fa;
            wmma::load_matrix_sync(fa, sHid + g2_rt * 16 * K::LDW + kk, K::LDW);
#pragma unroll
            for (int i = 0; i < K::CTPW; i++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, op_t, wmma::col_major> fb;
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

}  // namespace ac_mlp_fused
