// x = LayerNorm(x + y) over the last axis (F.layer_norm in nn.TransformerDecoderLayer, post-LN; conette
// aac_tfmer.py). x, y: (rows, D) row-major. One warp per row; mean and variance summed in double and the
// normalisation written as host/ref/ref_ops.c ln_row does ((v - mean) * inv * w + b, inv = 1/sqrt(var + eps)).
#include "common.cuh"
#include "decoder_add_ln.h"

__global__ void add_ln_kernel(float *x, const float *y, int max_rows, const int *d_rows, int D, const float *w,
                              const float *b, float eps) {
    const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= (d_rows ? min(*d_rows, max_rows) : max_rows)) return;  // whole warps leave together
    float *xr = x + (size_t)r * D;
    const float *yr = y + (size_t)r * D;
    double s = 0;
    for (int i = lane; i < D; i += 32) {
        const float v = xr[i] + yr[i];
        xr[i] = v;
        s += v;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const double mean = s / D;
    double q = 0;
    for (int i = lane; i < D; i += 32) {
        const double d = xr[i] - mean;
        q += d * d;
    }
    for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
    const double var = q / D;
    const float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
    for (int i = lane; i < D; i += 32) xr[i] = (xr[i] - fm) * inv * w[i] + b[i];
}

extern "C" ac_status ac_gpu_add_layernorm(float *x, const float *y, int max_rows, const int *d_rows, int D,
                                          const float *weight, const float *bias, float eps, cudaStream_t stream) {
    if (!x || !y || !weight || !bias || max_rows < 0 || D < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "add+layernorm: %d rows, D %d", max_rows, D);
    if (max_rows == 0) return AC_OK;
    add_ln_kernel<<<CEIL_DIV(max_rows, 8), 256, 0, stream>>>(x, y, max_rows, d_rows, D, weight, bias, eps);
    KERNEL_CHECK();
    return AC_OK;
}
