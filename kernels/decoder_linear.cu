// y (M, N) = x (M, K) . W^T + b [then erf GELU]: nn.Linear of the decoder (aac_tfmer.py; in_proj, out_proj,
// linear1/2, classifier) and the cross-attention key/value projection of the encoder memory.
// x (M, K), W (N, K), y (M, N): row-major, contiguous. See decoder_linear.h for the batch-invariance contract.
//   FP32: 64x64 output tile per 256-thread block, 4x4 outputs per thread, k in tiles of 16 in increasing order:
//         each output is one sequential fma chain over k = 0..K-1 (zero-padded past K).
//   BF16: 64x64 tile per 4 warps (32x32 each, mma.sync m16n8k16 bf16 -> fp32), or 32x32 when 64x64 tiles would not
//         give every SM a block (bf16_tile; AC_LINEAR_TILE=64|32 forces one; both give the same bits), k in
//         steps of 16 in increasing order, slices of 32 through a 3-stage cp.async ring;
//         16-byte copies when K % 8 == 0 (every decoder matrix of the published models), scalar loads otherwise.
//   Linear + residual + LayerNorm (ac_gpu_linear_add_ln, BF16, N = 256): 16 rows x 256 columns per block of 8
//         warps, the same k loop, the row statistics in the epilogue (decoder_linear_kernel.cuh linear_ln_kernel).
#include "common.cuh"
#include "gelu.cuh"
#include "decoder_add_ln.h"
#include "decoder_linear.h"

#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <atomic>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mma_16816.cuh"
#include "decoder_linear_kernel.cuh"

// The BF16 tile edge for an (M_max, N) output on the current device: 64, unless its grid has fewer blocks than
// the device has SMs (the N = 256 linears at 768 rows: 48 blocks), where it would run on a third of the chip;
// then 32 (4x the blocks, half the reuse per loaded element). Not sooner: the 64 x 64 tile issues 6.4
// instructions per HMMA against the 32 x 32 tile's 13.1 (split product, sm_90), so at 768 rows linear1 (384
// blocks of 64) and in_proj (144) take half the issue slots with it, by count (the threshold was four blocks per
// SM for the WMMA kernel before, whose tiles issued alike). The SM count is cached per device.
static ac_status bf16_tile(int M_max, int N, int *tile) {
    const char *e = getenv("AC_LINEAR_TILE");
    if (e && (!strcmp(e, "64") || !strcmp(e, "32"))) {
        *tile = atoi(e);
        return AC_OK;
    }
    static std::atomic<int> sm_count[64];  // worker threads of several devices call this
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    int sms = dev >= 0 && dev < 64 ? sm_count[dev].load(std::memory_order_relaxed) : 0;
    if (!sms) {
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        if (dev >= 0 && dev < 64) sm_count[dev].store(sms, std::memory_order_relaxed);
    }
    *tile = (int64_t)CEIL_DIV(N, 64) * CEIL_DIV(M_max, 64) >= (int64_t)sms ? 64 : 32;
    return AC_OK;
}

static __global__ void split_lo_kernel(const float *__restrict__ W, const __nv_bfloat16 *__restrict__ W_hi, int64_t n,
                                       __nv_bfloat16 *__restrict__ W_lo) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        W_lo[i] = __float2bfloat16_rn(W[i] - __bfloat162float(W_hi[i]));
}

extern "C" ac_status ac_gpu_bf16_split_lo(const float *W, const void *W_hi, int64_t n, void *W_lo,
                                          cudaStream_t stream) {
    if (!W || !W_hi || !W_lo || n < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "bf16 split: W %p, W_hi %p, W_lo %p, %lld elements", (const void *)W, W_hi,
                       W_lo, (long long)n);
    if (n == 0) return AC_OK;
    const int64_t blocks = CEIL_DIV(n, (int64_t)256);
    split_lo_kernel<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256, 0, stream>>>(
        W, (const __nv_bfloat16 *)W_hi, n, (__nv_bfloat16 *)W_lo);
    KERNEL_CHECK();
    return AC_OK;
}

// 16-byte cp.async copies (VEC) for these operands: K % 8 == 0 and every row start 16-byte aligned
static int bf16_vec(const float *x, int K, const void *W, const void *W_lo) {
    return K % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)W % 16 == 0 && (uintptr_t)W_lo % 16 == 0;
}

// kchunk: K, or the split-K chunk (grid.z chunks, each summed into its own plane of y)
template <int T, bool SPLIT, bool VEC>
static ac_status launch_bf16(dim3 grid, cudaStream_t stream, const float *x, int M_max, const int *d_M, int K,
                             int kchunk, const __nv_bfloat16 *W, const __nv_bfloat16 *W_lo, const float *b, int N,
                             int gelu, float *y) {
    typedef lin_mma<T, T, SPLIT> C;
    auto kern = linear_bf16_kernel<T, T, SPLIT, VEC>;
    CUDA_CHECK(ac_smem_optin(kern, C::SMEM));
    kern<<<grid, C::NTHREADS, C::SMEM, stream>>>(x, M_max, d_M, K, kchunk, W, W_lo, b, N, gelu, y);
    KERNEL_CHECK();
    return AC_OK;
}

template <int T>
static ac_status launch_bf16(dim3 grid, cudaStream_t stream, const float *x, int M_max, const int *d_M, int K,
                             int kchunk, const __nv_bfloat16 *W, const __nv_bfloat16 *W_lo, const float *b, int N,
                             int gelu, int vec, float *y) {
    if (W_lo && vec) return launch_bf16<T, true, true>(grid, stream, x, M_max, d_M, K, kchunk, W, W_lo, b, N, gelu, y);
    if (W_lo) return launch_bf16<T, true, false>(grid, stream, x, M_max, d_M, K, kchunk, W, W_lo, b, N, gelu, y);
    if (vec) return launch_bf16<T, false, true>(grid, stream, x, M_max, d_M, K, kchunk, W, nullptr, b, N, gelu, y);
    return launch_bf16<T, false, false>(grid, stream, x, M_max, d_M, K, kchunk, W, nullptr, b, N, gelu, y);
}

// the BF16 tile kernel for tile edge 64 or 32 (bf16_tile's choice), on a grid of that tile's blocks
static ac_status launch_bf16_tile(int tile, dim3 grid, cudaStream_t stream, const float *x, int M_max, const int *d_M,
                                  int K, int kchunk, const void *W, const void *W_lo, const float *b, int N, int gelu,
                                  float *y) {
    const __nv_bfloat16 *wh = (const __nv_bfloat16 *)W, *wl = (const __nv_bfloat16 *)W_lo;
    const int vec = bf16_vec(x, K, W, W_lo);
    return tile == 64 ? launch_bf16<64>(grid, stream, x, M_max, d_M, K, kchunk, wh, wl, b, N, gelu, vec, y)
                      : launch_bf16<32>(grid, stream, x, M_max, d_M, K, kchunk, wh, wl, b, N, gelu, vec, y);
}

extern "C" ac_status ac_gpu_linear_grid(const float *x, int M_max, const int *d_M, int K, const float *W,
                                        const void *W_bf16, const void *W_bf16_lo, const float *b, int N, int gelu,
                                        float *y, cudaStream_t stream, int max_grid_y) {
    if (!x || !y || (!W && !W_bf16) || (W_bf16_lo && !W_bf16) || M_max < 0 || K < 1 || N < 1 || max_grid_y < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "linear: x %p W %p/%p/%p (fp32/bf16/bf16 lo) y %p, M %d K %d N %d",
                       (const void *)x, (const void *)W, W_bf16, W_bf16_lo, (void *)y, M_max, K, N);
    if (M_max == 0) return AC_OK;
    static_assert(LIN_BM == LIN_BN, "square FP32 tiles: one edge sizes the grid");
    int tile = LIN_BM;  // FP32; BF16 picks 64 or 32
    if (W_bf16) {
        ac_status st = bf16_tile(M_max, N, &tile);
        if (st) return st;
    }
    // Rows past one grid's reach (65,535 row tiles: 2-4 M rows, an encoder downsample of a big batch of long
    // clips) go in several launches: every row is summed alone, so the split changes no bit. Not with d_M: the
    // grid must cover the rows the device will count, and the decoder's are few.
    const int64_t rows_per = (int64_t)max_grid_y * tile;
    if (d_M && M_max > rows_per)
        return ac_fail(AC_ERR_INVALID_ARG, "linear: %d rows exceed the grid (hint: smaller batches)", M_max);
    for (int64_t r0 = 0; r0 < M_max; r0 += rows_per) {
        const int M = (int)(M_max - r0 < rows_per ? M_max - r0 : rows_per);
        const float *xr = x + r0 * K;  // r0 is a multiple of the tile: 16-byte alignment is kept
        float *yr = y + r0 * N;
        const dim3 grid(CEIL_DIV(N, tile), CEIL_DIV(M, tile));
        if (W_bf16) {
            const ac_status st = launch_bf16_tile(tile, grid, stream, xr, M, d_M, K, K, W_bf16, W_bf16_lo, b, N, gelu,
                                                  yr);
            if (st) return st;
        } else {
            linear_f32_kernel<<<grid, 256, 0, stream>>>(xr, M, d_M, K, W, b, N, gelu, yr);
            KERNEL_CHECK();
        }
    }
    return AC_OK;
}

extern "C" ac_status ac_gpu_linear(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                                   const void *W_bf16_lo, const float *b, int N, int gelu, float *y,
                                   cudaStream_t stream) {
    return ac_gpu_linear_grid(x, M_max, d_M, K, W, W_bf16, W_bf16_lo, b, N, gelu, y, stream, 65535);
}

extern "C" ac_lin_ln_path ac_gpu_linear_add_ln_path(const void *W_bf16, int N, int K) {
    const char *e = getenv("AC_LINEAR_LN");
    if ((e && e[0] == '0') || !W_bf16) return AC_LIN_LN_TWO;
    if (K > LIN_SPLITK_CHUNK) return AC_LIN_LN_SPLITK;
    return N == LIN_LN_N ? AC_LIN_LN_FUSED : AC_LIN_LN_TWO;
}

extern "C" int ac_gpu_linear_splitk_chunks(int K) { return K > LIN_SPLITK_CHUNK ? CEIL_DIV(K, LIN_SPLITK_CHUNK) : 1; }

extern "C" size_t ac_gpu_linear_add_ln_scratch(const void *W_bf16, int M_max, int N, int K) {
    const size_t plane = (size_t)(M_max > 0 ? M_max : 0) * (size_t)(N > 0 ? N : 0);
    return W_bf16 ? plane * (size_t)ac_gpu_linear_splitk_chunks(K) : plane;
}

template <bool SPLIT, bool VEC>
static ac_status launch_ln(int M_max, cudaStream_t stream, const float *in, const int *d_M, int K,
                           const __nv_bfloat16 *W, const __nv_bfloat16 *W_lo, const float *b, float *x,
                           const float *ln_w, const float *ln_b, float eps) {
    typedef lin_ln_cfg<SPLIT> C;
    auto kern = linear_ln_kernel<SPLIT, VEC>;
    CUDA_CHECK(ac_smem_optin(kern, C::SMEM));
    kern<<<CEIL_DIV(M_max, C::BM), C::NTHREADS, C::SMEM, stream>>>(in, M_max, d_M, K, W, W_lo, b, x, ln_w, ln_b, eps);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_gpu_linear_add_ln(const float *in, int M_max, const int *d_M, int K, const float *W,
                                          const void *W_bf16, const void *W_bf16_lo, const float *b, int N, float *x,
                                          const float *ln_w, const float *ln_b, float eps, float *scratch,
                                          cudaStream_t stream) {
    if (!in || !x || !b || !ln_w || !ln_b || (!W && !W_bf16) || (W_bf16_lo && !W_bf16) || M_max < 0 || K < 1 || N < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "linear + layernorm: in %p W %p/%p x %p b %p ln %p/%p, M %d K %d N %d",
                       (const void *)in, (const void *)W, W_bf16, (void *)x, (const void *)b, (const void *)ln_w,
                       (const void *)ln_b, M_max, K, N);
    if (M_max == 0) return AC_OK;
    const ac_lin_ln_path path = ac_gpu_linear_add_ln_path(W_bf16, N, K);
    if (path != AC_LIN_LN_FUSED && !scratch)
        return ac_fail(AC_ERR_INVALID_ARG, "linear + layernorm: M %d K %d N %d needs a scratch buffer of %zu floats "
                       "(ac_gpu_linear_add_ln_scratch)", M_max, K, N, ac_gpu_linear_add_ln_scratch(W_bf16, M_max, N, K));
    if (path == AC_LIN_LN_TWO) {
        ac_status st = ac_gpu_linear(in, M_max, d_M, K, W, W_bf16, W_bf16_lo, b, N, 0, scratch, stream);
        return st ? st : ac_gpu_add_layernorm(x, scratch, M_max, d_M, N, ln_w, ln_b, eps, stream);
    }
    if (path == AC_LIN_LN_SPLITK) {
        const int chunks = ac_gpu_linear_splitk_chunks(K);
        int tile = 64;
        ac_status st = bf16_tile(M_max, N * chunks, &tile);  // the chunks count as columns: the grid's blocks
        if (st) return st;
        // partial sums, no bias, into chunks planes of scratch
        const dim3 grid(CEIL_DIV(N, tile), CEIL_DIV(M_max, tile), chunks);
        st = launch_bf16_tile(tile, grid, stream, in, M_max, d_M, K, LIN_SPLITK_CHUNK, W_bf16, W_bf16_lo, NULL, N, 0,
                              scratch);
        return st ? st : ac_gpu_add_layernorm_sum(x, scratch, chunks, b, M_max, d_M, N, ln_w, ln_b, eps, stream);
    }
    const int vec = bf16_vec(in, K, W_bf16, W_bf16_lo);
    const __nv_bfloat16 *wh = (const __nv_bfloat16 *)W_bf16, *wl = (const __nv_bfloat16 *)W_bf16_lo;
    if (wl) return vec ? launch_ln<true, true>(M_max, stream, in, d_M, K, wh, wl, b, x, ln_w, ln_b, eps)
                       : launch_ln<true, false>(M_max, stream, in, d_M, K, wh, wl, b, x, ln_w, ln_b, eps);
    return vec ? launch_ln<false, true>(M_max, stream, in, d_M, K, wh, nullptr, b, x, ln_w, ln_b, eps)
               : launch_ln<false, false>(M_max, stream, in, d_M, K, wh, nullptr, b, x, ln_w, ln_b, eps);
}
