// The decoder's linear kernels (FP32 tiles on CUDA cores, BF16 WMMA tiles), optional erf GELU; included by
// kernels/decoder_linear.cu (see there for the tiling and the batch-invariance contract) and by
// tests/emu/decoder_ops_emu.cpp, which runs this same code on the CPU against host/ref/ref_ops.c.
// Needs stdint.h, gelu.cuh and CUDA (cuda_bf16.h, mma.h; or the emulator's stand-ins) before it.
#pragma once

#define LIN_BM 64
#define LIN_BN 64
#define LIN_BK 16

__global__ void __launch_bounds__(256) linear_f32_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                         const float *__restrict__ W, const float *__restrict__ b,
                                                         int N, int gelu, float *__restrict__ y) {
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * LIN_BM, n0 = blockIdx.x * LIN_BN;
    if (m0 >= M) return;
    __shared__ float As[LIN_BK][LIN_BM + 4];
    __shared__ float Ws[LIN_BK][LIN_BN + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += LIN_BK) {
        // 64 x 16 elements of each operand, 4 per thread; consecutive threads read consecutive k
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int idx = tid + e * 256, r = idx >> 4, kk = idx & 15, k = k0 + kk;
            const int m = m0 + r, n = n0 + r;
            As[kk][r] = (m < M && k < K) ? x[(size_t)m * K + k] : 0.0f;
            Ws[kk][r] = (n < N && k < K) ? W[(size_t)n * K + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LIN_BK; kk++) {
            float a[4], w[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) w[j] = Ws[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty * 4 + i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx * 4 + j;
            if (n >= N) continue;
            float v = acc[i][j] + (b ? b[n] : 0.0f);
            y[(size_t)m * N + n] = gelu ? ac_gelu_erf(v) : v;
        }
    }
}

// k tile of the BF16 kernel. The sums do not depend on it (each warp's accumulators step through k 16 at a time,
// in increasing order, across tiles), only the number of load-sync-compute rounds does: at the decoder's shapes
// (M = clips x beams ~ 768, N = 256 for four of a layer's six linears: 48 blocks) each round is mostly load
// latency, and linear2 (K = 2048) took 64 of them at 32; 128 makes it 16. The split kernel holds two copies of
// each operand tile, so it takes 64 to stay within the 48 KB of static shared memory.
template <bool SPLIT> struct bf_tile {
    static constexpr int BK = SPLIT ? 64 : 128;
    static constexpr int LD = BK + 8;  // WMMA: leading dimension a multiple of 8 bf16; +8 staggers the banks
    static constexpr int COPIES = SPLIT ? 2 : 1;
};

// x -> bf16 hi (round to nearest even) and, for the split product, lo = bf16(x - hi): hi + lo carries 16 of x's
// 24 significand bits
__device__ __forceinline__ void bf16_split(float v, __nv_bfloat16 *hi, __nv_bfloat16 *lo) {
    *hi = __float2bfloat16_rn(v);
    if (lo) *lo = __float2bfloat16_rn(v - __bfloat162float(*hi));
}

// BM x BN output tile per 4 warps (2 x 2, each (BM/2) x (BN/2) in 16 x 16 fragments): 64 x 64, or 32 x 32 where
// the grid of 64 x 64 tiles would leave most SMs idle (the decoder's N = 256 linears at M = 768: 48 blocks on 132
// SMs; 192 with 32 x 32). Every output element goes through the same mma sequence over k whatever the tile (one
// 16 x 16 x 16 step per k0 + kk, in increasing order), so both tiles give bit-identical results.
// SPLIT (W_lo given): three bf16 products per k step, x_lo W_hi + x_hi W_lo + x_hi W_hi (small terms first), the
// operands split as bf16_split does (W_lo = bf16(W - W_hi), made once by ac_gpu_bf16_split_lo): ~2^-16 relative per
// product instead of bf16's ~2^-8, on the same tensor cores and fp32 accumulators (the "3xTF32" scheme of CUTLASS
// with bf16 halves). The decoder takes it: its choices are discrete, and plain bf16 operands changed the caption of
// ~40 % of clips of a random full-size model in a simulation of our numerics (bench/RESULTS.md).
template <int BM, int BN, bool SPLIT>
__global__ void __launch_bounds__(128) linear_bf16_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                          const __nv_bfloat16 *__restrict__ W,
                                                          const __nv_bfloat16 *__restrict__ W_lo,
                                                          const float *__restrict__ b, int N, int gelu, int vec,
                                                          float *__restrict__ y) {
    using namespace nvcuda;
    constexpr int FM = BM / 32, FN = BN / 32;  // fragments per warp along m and n
    constexpr int BK = bf_tile<SPLIT>::BK, LD = bf_tile<SPLIT>::LD, NC = bf_tile<SPLIT>::COPIES;
    static_assert(FM >= 1 && FN >= 1 && BM % 32 == 0 && BN % 32 == 0, "tiles of 32 or 64");
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    if (m0 >= M) return;
    // As (hi, then lo), Bs (hi, then lo) for the k loop; Cs, the epilogue's staging, reuses their space after it
    __shared__ __align__(32) unsigned char smem_lin[NC * (BM + BN) * LD * 2];
    __nv_bfloat16 *As = (__nv_bfloat16 *)smem_lin, *Bs = As + NC * BM * LD;
    __nv_bfloat16 *As_lo = SPLIT ? As + BM * LD : nullptr, *Bs_lo = SPLIT ? Bs + BN * LD : nullptr;
    float *Cs = (float *)smem_lin;
    static_assert(BM * BN * 4 <= NC * (BM + BN) * LD * 2, "Cs fits in the operands' space");
    static_assert(NC * (BM + BN) * LD * 2 <= 48 * 1024, "static shared memory");
    const int tid = threadIdx.x, warp = tid >> 5, wm = (warp >> 1) * (BM / 2), wn = (warp & 1) * (BN / 2);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::fill_fragment(c[i][j], 0.0f);
    const __nv_bfloat16 zero = __float2bfloat16(0.0f);
    for (int k0 = 0; k0 < K; k0 += BK) {
        if (vec) {
            // K % 8 == 0, 16-byte aligned rows: x as float4, W as 8 bf16 at a time, every load issued before the
            // first store so that their latencies overlap
            constexpr int XQ = BK / 4, WQ = BK / 8, XPT = BM * XQ / 128, WPT = BN * WQ / 128;
            float4 xv[XPT];
            uint4 wv[WPT], wl[SPLIT ? WPT : 1];
#pragma unroll
            for (int i = 0; i < XPT; i++) {
                const int e = tid + 128 * i, m = m0 + e / XQ, k = k0 + 4 * (e % XQ);
                xv[i] = m < M && k < K ? *reinterpret_cast<const float4 *>(x + (size_t)m * K + k)
                                       : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int i = 0; i < WPT; i++) {
                const int e = tid + 128 * i, n = n0 + e / WQ, k = k0 + 8 * (e % WQ);
                const bool in = n < N && k < K;
                const uint4 z = make_uint4(0u, 0u, 0u, 0u);
                wv[i] = in ? *reinterpret_cast<const uint4 *>(W + (size_t)n * K + k) : z;
                if (SPLIT) wl[i] = in ? *reinterpret_cast<const uint4 *>(W_lo + (size_t)n * K + k) : z;
            }
#pragma unroll
            for (int i = 0; i < XPT; i++) {
                const int e = tid + 128 * i, o = (e / XQ) * LD + 4 * (e % XQ);
                const float v[4] = {xv[i].x, xv[i].y, xv[i].z, xv[i].w};
                __nv_bfloat16 h[4], l[4];
#pragma unroll
                for (int q = 0; q < 4; q++) bf16_split(v[q], &h[q], SPLIT ? &l[q] : nullptr);
                __nv_bfloat162 *dst = reinterpret_cast<__nv_bfloat162 *>(As + o);
                dst[0] = __halves2bfloat162(h[0], h[1]);
                dst[1] = __halves2bfloat162(h[2], h[3]);
                if (SPLIT) {
                    __nv_bfloat162 *dl = reinterpret_cast<__nv_bfloat162 *>(As_lo + o);
                    dl[0] = __halves2bfloat162(l[0], l[1]);
                    dl[1] = __halves2bfloat162(l[2], l[3]);
                }
            }
#pragma unroll
            for (int i = 0; i < WPT; i++) {
                const int e = tid + 128 * i, o = (e / WQ) * LD + 8 * (e % WQ);
                *reinterpret_cast<uint4 *>(Bs + o) = wv[i];
                if (SPLIT) *reinterpret_cast<uint4 *>(Bs_lo + o) = wl[i];
            }
        } else {
            // BM (BN) x BK elements of each operand
            for (int idx = tid; idx < BM * BK; idx += 128) {
                const int r = idx / BK, kk = idx % BK, k = k0 + kk, m = m0 + r;
                __nv_bfloat16 h = zero, l = zero;
                if (m < M && k < K) bf16_split(x[(size_t)m * K + k], &h, SPLIT ? &l : nullptr);
                As[r * LD + kk] = h;
                if (SPLIT) As_lo[r * LD + kk] = l;
            }
            for (int idx = tid; idx < BN * BK; idx += 128) {
                const int r = idx / BK, kk = idx % BK, k = k0 + kk, n = n0 + r;
                const bool in = n < N && k < K;
                Bs[r * LD + kk] = in ? W[(size_t)n * K + k] : zero;
                if (SPLIT) Bs_lo[r * LD + kk] = in ? W_lo[(size_t)n * K + k] : zero;
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[FM];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[FN];
#pragma unroll
            for (int i = 0; i < FM; i++) wmma::load_matrix_sync(fa[i], As + (wm + 16 * i) * LD + kk, LD);
            // B (k, n) = W[n][k]: Bs holds rows n, so it is B in column-major order
#pragma unroll
            for (int j = 0; j < FN; j++) wmma::load_matrix_sync(fb[j], Bs + (wn + 16 * j) * LD + kk, LD);
            if (SPLIT) {  // the two small products first, into the same accumulators
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fl[FM];
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> gl[FN];
#pragma unroll
                for (int i = 0; i < FM; i++) wmma::load_matrix_sync(fl[i], As_lo + (wm + 16 * i) * LD + kk, LD);
#pragma unroll
                for (int j = 0; j < FN; j++) wmma::load_matrix_sync(gl[j], Bs_lo + (wn + 16 * j) * LD + kk, LD);
#pragma unroll
                for (int i = 0; i < FM; i++)
#pragma unroll
                    for (int j = 0; j < FN; j++) {
                        wmma::mma_sync(c[i][j], fl[i], fb[j], c[i][j]);
                        wmma::mma_sync(c[i][j], fa[i], gl[j], c[i][j]);
                    }
            }
#pragma unroll
            for (int i = 0; i < FM; i++)
#pragma unroll
                for (int j = 0; j < FN; j++) wmma::mma_sync(c[i][j], fa[i], fb[j], c[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++)
            wmma::store_matrix_sync(Cs + (wm + 16 * i) * BN + wn + 16 * j, c[i][j], BN, wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < BM * BN; idx += 128) {
        const int r = idx / BN, cc = idx % BN, m = m0 + r, n = n0 + cc;
        if (m >= M || n >= N) continue;
        float v = Cs[idx] + (b ? b[n] : 0.0f);
        y[(size_t)m * N + n] = gelu ? ac_gelu_erf(v) : v;
    }
}
