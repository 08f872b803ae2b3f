// ConvNeXt block, second half, unfused: the baseline for (and stand-in until the merge of) the fused kernel in
// kernels/convnext_mlp.h, with the same contract plus a cuBLAS handle:
//   x += gamma * (GELU_erf(h @ pwconv1_w^T + pwconv1_b) @ pwconv2_w^T + pwconv2_b)
// conette convnext.py:22-74 (pwconv1, act, pwconv2, scale_layer, residual); host/model.c runs it as ref_linear,
// ref_gelu_erf, ref_linear and the residual loop. Four passes over memory: GEMM (bias first), GELU (+ bf16 cast),
// GEMM, residual.
// x: (N, C) fp32, updated in place. h: (N, C) float (AC_PREC_FP32) or __nv_bfloat16 (AC_PREC_BF16).
// pwconv1_w (4C, C), pwconv2_w (C, 4C): float for FP32, bf16 for BF16. Biases and gamma: float.
#ifndef AC_CONVNEXT_MLP_UNFUSED_H
#define AC_CONVNEXT_MLP_UNFUSED_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_types.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t ac_convnext_mlp_unfused_workspace(ac_precision prec, int64_t N, int C);
ac_status ac_convnext_mlp_unfused(void *cublas, ac_precision prec, int64_t N, int C, const void *h,
                                  const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                  const float *pwconv2_b, const float *gamma, float *x, void *workspace,
                                  size_t workspace_bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
