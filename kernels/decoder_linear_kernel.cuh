// The decoder's linear kernels (FP32 tiles on CUDA cores, BF16 WMMA tiles), optional erf GELU; included by
// kernels/decoder_linear.cu (see there for the tiling and the batch-invariance contract) and by
// tests/emu/decoder_ops_emu.cpp, which runs this same code on the CPU against host/ref/ref_ops.c.
// Needs stdint.h, decoder_gelu.cuh and CUDA (cuda_bf16.h, mma.h; or the emulator's stand-ins) before it.
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
// latency, and linear2 (K = 2048) took 64 of them at 32; 128 makes it 16.
#define BF_BK 128
#define BF_LD (BF_BK + 8)  // WMMA: leading dimension a multiple of 8 bf16; +8 staggers the banks

// BM x BN output tile per 4 warps (2 x 2, each (BM/2) x (BN/2) in 16 x 16 fragments): 64 x 64, or 32 x 32 where
// the grid of 64 x 64 tiles would leave most SMs idle (the decoder's N = 256 linears at M = 768: 48 blocks on 132
// SMs; 192 with 32 x 32). Every output element goes through the same mma sequence over k whatever the tile (one
// 16 x 16 x 16 step per k0 + kk, in increasing order), so both tiles give bit-identical results.
template <int BM, int BN>
__global__ void __launch_bounds__(128) linear_bf16_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                          const __nv_bfloat16 *__restrict__ W,
                                                          const float *__restrict__ b, int N, int gelu, int vec,
                                                          float *__restrict__ y) {
    using namespace nvcuda;
    constexpr int FM = BM / 32, FN = BN / 32;  // fragments per warp along m and n
    static_assert(FM >= 1 && FN >= 1 && BM % 32 == 0 && BN % 32 == 0, "tiles of 32 or 64");
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    if (m0 >= M) return;
    // As, Bs for the k loop; Cs, the epilogue's staging, reuses their space after it (static)
    __shared__ __align__(32) unsigned char smem_lin[(BM + BN) * BF_LD * 2];
    __nv_bfloat16 *As = (__nv_bfloat16 *)smem_lin, *Bs = As + BM * BF_LD;
    float *Cs = (float *)smem_lin;
    static_assert(BM * BN * 4 <= (BM + BN) * BF_LD * 2, "Cs fits in the operands' space");
    const int tid = threadIdx.x, warp = tid >> 5, wm = (warp >> 1) * (BM / 2), wn = (warp & 1) * (BN / 2);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::fill_fragment(c[i][j], 0.0f);
    const __nv_bfloat16 zero = __float2bfloat16(0.0f);
    for (int k0 = 0; k0 < K; k0 += BF_BK) {
        if (vec) {
            // K % 8 == 0, 16-byte aligned rows: x as float4, W as 8 bf16 at a time, every load issued before the
            // first store so that their latencies overlap
            constexpr int XQ = BF_BK / 4, WQ = BF_BK / 8, XPT = BM * XQ / 128, WPT = BN * WQ / 128;
            float4 xv[XPT];
            uint4 wv[WPT];
#pragma unroll
            for (int i = 0; i < XPT; i++) {
                const int e = tid + 128 * i, m = m0 + e / XQ, k = k0 + 4 * (e % XQ);
                xv[i] = m < M && k < K ? *reinterpret_cast<const float4 *>(x + (size_t)m * K + k)
                                       : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int i = 0; i < WPT; i++) {
                const int e = tid + 128 * i, n = n0 + e / WQ, k = k0 + 8 * (e % WQ);
                wv[i] = n < N && k < K ? *reinterpret_cast<const uint4 *>(W + (size_t)n * K + k)
                                       : make_uint4(0u, 0u, 0u, 0u);
            }
#pragma unroll
            for (int i = 0; i < XPT; i++) {
                const int e = tid + 128 * i;
                __nv_bfloat162 *dst = reinterpret_cast<__nv_bfloat162 *>(As + (e / XQ) * BF_LD + 4 * (e % XQ));
                dst[0] = __floats2bfloat162_rn(xv[i].x, xv[i].y);
                dst[1] = __floats2bfloat162_rn(xv[i].z, xv[i].w);
            }
#pragma unroll
            for (int i = 0; i < WPT; i++) {
                const int e = tid + 128 * i;
                *reinterpret_cast<uint4 *>(Bs + (e / WQ) * BF_LD + 8 * (e % WQ)) = wv[i];
            }
        } else {
            // BM (BN) x BF_BK elements of each operand
            for (int idx = tid; idx < BM * BF_BK; idx += 128) {
                const int r = idx / BF_BK, kk = idx % BF_BK, k = k0 + kk, m = m0 + r;
                As[r * BF_LD + kk] = (m < M && k < K) ? __float2bfloat16(x[(size_t)m * K + k]) : zero;
            }
            for (int idx = tid; idx < BN * BF_BK; idx += 128) {
                const int r = idx / BF_BK, kk = idx % BF_BK, k = k0 + kk, n = n0 + r;
                Bs[r * BF_LD + kk] = (n < N && k < K) ? W[(size_t)n * K + k] : zero;
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BF_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[FM];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[FN];
#pragma unroll
            for (int i = 0; i < FM; i++) wmma::load_matrix_sync(fa[i], As + (wm + 16 * i) * BF_LD + kk, BF_LD);
            // B (k, n) = W[n][k]: Bs holds rows n, so it is B in column-major order
#pragma unroll
            for (int j = 0; j < FN; j++) wmma::load_matrix_sync(fb[j], Bs + (wn + 16 * j) * BF_LD + kk, BF_LD);
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
