// Residual add + LayerNorm of the post-LN decoder layer (nn.TransformerDecoderLayer, norm_first=False:
// x = norm(x + sublayer(x))), in place on the live rows.
#ifndef AC_DECODER_ADD_LN_H
#define AC_DECODER_ADD_LN_H

#include <cuda_runtime_api.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// x (rows, D) = LayerNorm(x + y) with weight/bias (D), biased variance, eps; rows < *d_rows (NULL: max_rows).
ac_status ac_gpu_add_layernorm(float *x, const float *y, int max_rows, const int *d_rows, int D, const float *weight,
                               const float *bias, float eps, cudaStream_t stream);

// The same with the sublayer's output as `chunks` partial sums without its bias (a split-K linear's: planes of
// (max_rows, D)): x = LayerNorm(x + ((parts[0] + parts[1]) + ...) + bias), bias (D) or NULL.
ac_status ac_gpu_add_layernorm_sum(float *x, const float *parts, int chunks, const float *bias, int max_rows,
                                   const int *d_rows, int D, const float *weight, const float *bias_ln, float eps,
                                   cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
