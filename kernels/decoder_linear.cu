// y (M, N) = x (M, K) . W^T + b [then erf GELU]: nn.Linear of the decoder (aac_tfmer.py; in_proj, out_proj,
// linear1/2, classifier) and the cross-attention key/value projection of the encoder memory.
// x (M, K), W (N, K), y (M, N): row-major, contiguous. See decoder_linear.h for the batch-invariance contract.
//   FP32: 64x64 output tile per 256-thread block, 4x4 outputs per thread, k in tiles of 16 in increasing order:
//         each output is one sequential fma chain over k = 0..K-1 (zero-padded past K).
//   BF16: 64x64 tile per 4 warps (32x32 each, WMMA 16x16x16 bf16 -> fp32), k tiles of 32 in increasing order;
//         16-byte loads when K % 8 == 0 (every decoder matrix of the published models), scalar loads otherwise.
#include "common.cuh"
#include "decoder_gelu.cuh"
#include "decoder_linear.h"

#include <cuda_bf16.h>
#include <mma.h>
#include <stdint.h>

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

#define BF_BK 32
#define BF_LD (BF_BK + 8)  // WMMA: leading dimension a multiple of 8 bf16; +8 staggers the banks

__global__ void __launch_bounds__(128) linear_bf16_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                          const __nv_bfloat16 *__restrict__ W,
                                                          const float *__restrict__ b, int N, int gelu, int vec,
                                                          float *__restrict__ y) {
    using namespace nvcuda;
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * LIN_BM, n0 = blockIdx.x * LIN_BN;
    if (m0 >= M) return;
    __shared__ __align__(32) __nv_bfloat16 As[LIN_BM * BF_LD];
    __shared__ __align__(32) __nv_bfloat16 Bs[LIN_BN * BF_LD];
    __shared__ __align__(32) float Cs[LIN_BM * LIN_BN];
    const int tid = threadIdx.x, warp = tid >> 5, wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(c[i][j], 0.0f);
    const __nv_bfloat16 zero = __float2bfloat16(0.0f);
    for (int k0 = 0; k0 < K; k0 += BF_BK) {
        if (vec) {
            // K % 8 == 0, 16-byte aligned rows: x as float4 (4 per thread), W as 8 bf16 at a time (2 per thread)
            for (int e = tid; e < LIN_BM * (BF_BK / 4); e += 128) {
                const int r = e / (BF_BK / 4), q = e % (BF_BK / 4), k = k0 + 4 * q, m = m0 + r;
                float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (m < M && k < K) v = *reinterpret_cast<const float4 *>(x + (size_t)m * K + k);
                __nv_bfloat162 *dst = reinterpret_cast<__nv_bfloat162 *>(As + r * BF_LD + 4 * q);
                dst[0] = __floats2bfloat162_rn(v.x, v.y);
                dst[1] = __floats2bfloat162_rn(v.z, v.w);
            }
            for (int e = tid; e < LIN_BN * (BF_BK / 8); e += 128) {
                const int r = e / (BF_BK / 8), q = e % (BF_BK / 8), k = k0 + 8 * q, n = n0 + r;
                uint4 v = make_uint4(0u, 0u, 0u, 0u);
                if (n < N && k < K) v = *reinterpret_cast<const uint4 *>(W + (size_t)n * K + k);
                *reinterpret_cast<uint4 *>(Bs + r * BF_LD + 8 * q) = v;
            }
        } else {
            // 64 x 32 elements of each operand, 16 per thread
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

extern "C" ac_status ac_gpu_linear(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                                   const float *b, int N, int gelu, float *y, cudaStream_t stream) {
    if (!x || !y || (!W && !W_bf16) || M_max < 0 || K < 1 || N < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "linear: x %p W %p/%p y %p, M %d K %d N %d", (const void *)x,
                       (const void *)W, W_bf16, (void *)y, M_max, K, N);
    if (M_max == 0) return AC_OK;
    dim3 grid(CEIL_DIV(N, LIN_BN), CEIL_DIV(M_max, LIN_BM));
    if (grid.y > 65535) return ac_fail(AC_ERR_INVALID_ARG, "linear: %d rows exceed the grid (hint: smaller batches)", M_max);
    if (W_bf16) {
        const int vec = K % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)W_bf16 % 16 == 0;
        linear_bf16_kernel<<<grid, 128, 0, stream>>>(x, M_max, d_M, K, (const __nv_bfloat16 *)W_bf16, b, N, gelu, vec,
                                                     y);
    } else
        linear_f32_kernel<<<grid, 256, 0, stream>>>(x, M_max, d_M, K, W, b, N, gelu, y);
    KERNEL_CHECK();
    return AC_OK;
}
