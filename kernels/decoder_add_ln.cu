// x = LayerNorm(x + y) over the last axis (F.layer_norm in nn.TransformerDecoderLayer, post-LN; conette
// aac_tfmer.py). x, y: (rows, D) row-major. One warp per row; mean and variance summed in double and the
// normalisation written as host/ref/ref_ops.c ln_row does ((v - mean) * inv * w + b, inv = 1/sqrt(var + eps)).
#include "common.cuh"
#include "decoder_add_ln.h"

#include "decoder_add_ln_kernel.cuh"

extern "C" ac_status ac_gpu_add_layernorm_sum(float *x, const float *parts, int chunks, const float *bias,
                                              int max_rows, const int *d_rows, int D, const float *weight,
                                              const float *bias_ln, float eps, cudaStream_t stream) {
    if (!x || !parts || !weight || !bias_ln || max_rows < 0 || D < 1 || chunks < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "add+layernorm: %d rows, D %d, %d partial sums", max_rows, D, chunks);
    if (max_rows == 0) return AC_OK;
    add_ln_kernel<<<CEIL_DIV(max_rows, 8), 256, 0, stream>>>(x, parts, chunks, bias, max_rows, d_rows, D, weight,
                                                             bias_ln, eps);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_gpu_add_layernorm(float *x, const float *y, int max_rows, const int *d_rows, int D,
                                          const float *weight, const float *bias, float eps, cudaStream_t stream) {
    return ac_gpu_add_layernorm_sum(x, y, 1, NULL, max_rows, d_rows, D, weight, bias, eps, stream);
}
