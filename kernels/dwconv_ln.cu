// Depthwise 7x7 conv + bias + LayerNorm, one warp per token (see dwconv_ln.h). Lanes own channels
// lane, lane + 32, ...; the 49 taps are summed in ref_dwconv7's order (bias, then rows i, columns j, skipping
// taps outside the clip); the C results are staged in shared memory and normalised by the warp.
// Consecutive warps of a block take consecutive frequency bins, so neighbouring taps are L1 hits.
// Performance note: each token re-reads its 7x7 neighbourhood through L1/L2; a shared-memory tile per block
// (and fusing the bf16 cast into the MLP's A-operand load) is the next step once measured.
#include "common.cuh"
#include "dwconv_ln.h"
#include "enc_common.cuh"

#define DW_WARPS 8

static __global__ void dw_weight_t_kernel(const float *__restrict__ w, int C, float *__restrict__ w49) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < 49 * C) w49[i] = w[(int64_t)(i % C) * 49 + i / C];  // w49[k * C + c] = w[c * 49 + k]
}

template <typename OutT>
static __global__ void dwconv_ln_kernel(const float *__restrict__ x, const int *__restrict__ foff, int n,
                                        int64_t tokens, int F, int C, const float *__restrict__ w49,
                                        const float *__restrict__ dw_b, const float *__restrict__ ln_w,
                                        const float *__restrict__ ln_b, float eps, OutT *__restrict__ h) {
    extern __shared__ float sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *v = sm + warp * C;
    const int64_t tok = (int64_t)blockIdx.x * DW_WARPS + warp;
    if (tok >= tokens) return;
    const int g = (int)(tok / F), f = (int)(tok % F);
    const int c = ac_clip_of(foff, n, g);
    const int row0 = foff[c], T = foff[c + 1] - row0, t = g - row0;
    for (int ch = lane; ch < C; ch += 32) {
        float acc = __ldg(dw_b + ch);
        for (int i = 0; i < 7; i++) {
            const int ts = t + i - 3;
            if (ts < 0 || ts >= T) continue;
            const float *xr = x + ((int64_t)(row0 + ts) * F) * C + ch;
            for (int j = 0; j < 7; j++) {
                const int fs = f + j - 3;
                if (fs < 0 || fs >= F) continue;
                acc += __ldg(w49 + (i * 7 + j) * C + ch) * __ldg(xr + (int64_t)fs * C);
            }
        }
        v[ch] = acc;
    }
    __syncwarp();
    float mean, inv;
    ac_warp_ln_stats(v, C, eps, &mean, &inv);
    OutT *out = h + tok * C;
    for (int ch = lane; ch < C; ch += 32)
        out[ch] = ac_from_float<OutT>((v[ch] - mean) * inv * __ldg(ln_w + ch) + __ldg(ln_b + ch));
}

extern "C" ac_status ac_dwconv7_weight_t(const float *dw_w, int C, float *dw_w49, cudaStream_t stream) {
    if (C < 1 || !dw_w || !dw_w49) return ac_fail(AC_ERR_INVALID_ARG, "dwconv weight: C %d or a NULL pointer", C);
    dw_weight_t_kernel<<<CEIL_DIV(49 * C, 256), 256, 0, stream>>>(dw_w, C, dw_w49);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_dwconv7_ln(ac_precision out_prec, const float *x, const int *foff, int n, int frames, int F,
                                   int C, const float *dw_w49, const float *dw_b, const float *ln_w, const float *ln_b,
                                   float eps, void *h, cudaStream_t stream) {
    if (n < 1 || frames < 0 || F < 1 || C < 1 || C > 1536 || (out_prec != AC_PREC_FP32 && out_prec != AC_PREC_BF16) ||
        !x || !foff || !dw_w49 || !dw_b || !ln_w || !ln_b || !h)
        return ac_fail(AC_ERR_INVALID_ARG, "dwconv7+LN: n %d, frames %d, F %d, C %d (<= 1536), precision %d or a "
                       "NULL pointer", n, frames, F, C, (int)out_prec);
    const int64_t tokens = (int64_t)frames * F;
    if (tokens == 0) return AC_OK;
    const size_t smem = sizeof(float) * DW_WARPS * C;
    const unsigned grid = (unsigned)CEIL_DIV(tokens, (int64_t)DW_WARPS);
    if (out_prec == AC_PREC_FP32) {
        if (smem > 48 * 1024)
            CUDA_CHECK(cudaFuncSetAttribute(dwconv_ln_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        dwconv_ln_kernel<float><<<grid, 32 * DW_WARPS, smem, stream>>>(x, foff, n, tokens, F, C, dw_w49, dw_b, ln_w,
                                                                       ln_b, eps, (float *)h);
    } else {
        if (smem > 48 * 1024)
            CUDA_CHECK(cudaFuncSetAttribute(dwconv_ln_kernel<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            (int)smem));
        dwconv_ln_kernel<__nv_bfloat16><<<grid, 32 * DW_WARPS, smem, stream>>>(x, foff, n, tokens, F, C, dw_w49, dw_b,
                                                                               ln_w, ln_b, eps, (__nv_bfloat16 *)h);
    }
    KERNEL_CHECK();
    return AC_OK;
}
