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

__global__ void __launch_bounds__(128) linear_bf16_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                          const __nv_bfloat16 *__restrict__ W,
                                                          const float *__restrict__ b, int N, int gelu, int vec,
                                                          float *__restrict__ y) {
    using namespace nvcuda;
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * LIN_BM, n0 = blockIdx.x * LIN_BN;
    if (m0 >= M) return;
    // As, Bs for the k loop; Cs, the epilogue's staging, reuses their space after it (35 KB in all, static)
    __shared__ __align__(32) unsigned char smem_lin[(LIN_BM + LIN_BN) * BF_LD * 2];
    __nv_bfloat16 *As = (__nv_bfloat16 *)smem_lin, *Bs = As + LIN_BM * BF_LD;
    float *Cs = (float *)smem_lin;
    static_assert(LIN_BM * LIN_BN * 4 <= (LIN_BM + LIN_BN) * BF_LD * 2, "Cs fits in the operands' space");
    const int tid = threadIdx.x, warp = tid >> 5, wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(c[i][j], 0.0f);
    const __nv_bfloat16 zero = __float2bfloat16(0.0f);
    for (int k0 = 0; k0 < K; k0 += BF_BK) {
        if (vec) {
            // K % 8 == 0, 16-byte aligned rows: x as float4 (16 per thread), W as 8 bf16 at a time (8 per thread),
            // every load issued before the first store so that their latencies overlap
            constexpr int XQ = BF_BK / 4, WQ = BF_BK / 8, XPT = LIN_BM * XQ / 128, WPT = LIN_BN * WQ / 128;
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
            // 64 x BF_BK elements of each operand
            for (int idx = tid; idx < LIN_BM * BF_BK; idx += 128) {
                const int r = idx / BF_BK, kk = idx % BF_BK, k = k0 + kk;
                const int m = m0 + r, n = n0 + r;
                As[r * BF_LD + kk] = (m < M && k < K) ? __float2bfloat16(x[(size_t)m * K + k]) : zero;
                Bs[r * BF_LD + kk] = (n < N && k < K) ? W[(size_t)n * K + k] : zero;
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BF_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], As + (wm + 16 * i) * BF_LD + kk, BF_LD);
            // B (k, n) = W[n][k]: Bs holds rows n, so it is B in column-major order
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], Bs + (wn + 16 * j) * BF_LD + kk, BF_LD);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(c[i][j], fa[i], fb[j], c[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(Cs + (wm + 16 * i) * LIN_BN + wn + 16 * j, c[i][j], LIN_BN, wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < LIN_BM * LIN_BN; idx += 128) {
        const int r = idx / LIN_BN, cc = idx % LIN_BN, m = m0 + r, n = n0 + cc;
        if (m >= M || n >= N) continue;
        float v = Cs[idx] + (b ? b[n] : 0.0f);
        y[(size_t)m * N + n] = gelu ? ac_gelu_erf(v) : v;
    }
}
