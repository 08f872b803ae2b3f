// LayerNorm + 2x2/2 im2col of a downsample (see downsample.h), one warp per output token: each of its four
// source tokens (used by no other output token: stride = kernel) is normalised and written as a column block.
#include "common.cuh"
#include "downsample.h"
#include "enc_common.cuh"

#define DS_WARPS 8

static __global__ void reorder_kernel(const float *__restrict__ w, int Cout, int Cin, float *__restrict__ wr,
                                      __nv_bfloat16 *__restrict__ wrb) {
    const int64_t total = (int64_t)Cout * Cin * 4;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        // i indexes wr (co, ij, ci); w is (co, ci, ij)
        const int64_t co = i / (4 * Cin);
        const int ij = (int)(i / Cin % 4), ci = (int)(i % Cin);
        const float v = w[(co * Cin + ci) * 4 + ij];
        wr[i] = v;
        if (wrb) wrb[i] = __float2bfloat16_rn(v);
    }
}

static __global__ void ln_im2col_kernel(const float *__restrict__ x, const int *__restrict__ foff_in,
                                        const int *__restrict__ foff_out, int n, int64_t tokens, int F, int Cin,
                                        const float *__restrict__ ln_w, const float *__restrict__ ln_b, float eps,
                                        float *__restrict__ cols) {
    extern __shared__ float sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *v = sm + warp * Cin;
    const int64_t tok = (int64_t)blockIdx.x * DS_WARPS + warp;
    if (tok >= tokens) return;
    const int Fo = F / 2;
    const int g = (int)(tok / Fo), fo = (int)(tok % Fo);
    const int c = ac_clip_of(foff_out, n, g);
    const int to = g - foff_out[c];
    float *dst = cols + tok * 4 * Cin;
    for (int ij = 0; ij < 4; ij++) {
        const int64_t src = ((int64_t)foff_in[c] + 2 * to + ij / 2) * F + 2 * fo + ij % 2;
        const float *xs = x + src * Cin;
        __syncwarp();  // the previous source's values have been read by every lane
        for (int ch = lane; ch < Cin; ch += 32) v[ch] = __ldg(xs + ch);
        __syncwarp();
        float mean, inv;
        ac_warp_ln_stats(v, Cin, eps, &mean, &inv);
        for (int ch = lane; ch < Cin; ch += 32)
            dst[ij * Cin + ch] = (v[ch] - mean) * inv * __ldg(ln_w + ch) + __ldg(ln_b + ch);
    }
}

extern "C" ac_status ac_downsample_weight_reorder(const float *w, int Cout, int Cin, float *wr, void *wr_bf16,
                                                  cudaStream_t stream) {
    if (Cout < 1 || Cin < 1 || !w || !wr) return ac_fail(AC_ERR_INVALID_ARG, "downsample weight: %d x %d", Cout, Cin);
    const int64_t total = (int64_t)Cout * Cin * 4;
    reorder_kernel<<<(unsigned)CEIL_DIV(total, (int64_t)256), 256, 0, stream>>>(w, Cout, Cin, wr,
                                                                               (__nv_bfloat16 *)wr_bf16);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_downsample_ln_im2col(const float *x, const int *foff_in, const int *foff_out, int n,
                                             int frames_out, int F, int Cin, const float *ln_w, const float *ln_b,
                                             float eps, float *cols, cudaStream_t stream) {
    if (n < 1 || frames_out < 0 || F < 2 || Cin < 1 || Cin > 1536 || !x || !foff_in || !foff_out || !ln_w || !ln_b ||
        !cols)
        return ac_fail(AC_ERR_INVALID_ARG, "downsample: n %d, frames %d, F %d (>= 2), Cin %d (<= 1536) or a NULL "
                       "pointer", n, frames_out, F, Cin);
    const int64_t tokens = (int64_t)frames_out * (F / 2);
    if (tokens == 0) return AC_OK;
    const size_t smem = sizeof(float) * DS_WARPS * Cin;
    const unsigned grid = (unsigned)CEIL_DIV(tokens, (int64_t)DS_WARPS);
    CUDA_CHECK(ac_smem_optin(ln_im2col_kernel, (int)smem));
    ln_im2col_kernel<<<grid, 32 * DS_WARPS, smem, stream>>>(x, foff_in, foff_out, n, tokens, F, Cin, ln_w, ln_b, eps,
                                                            cols);
    KERNEL_CHECK();
    return AC_OK;
}
