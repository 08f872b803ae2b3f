// The pointwise MLP of a ConvNeXt block with its layer scale and residual (conette nn/encoders/convnext.py:22-74,
// host/model.c encoder loop: pwconv1 -> GELU(erf) -> pwconv2 -> x += gamma * y), C-callable launchers.
//
//   x += gamma * (GELU_erf(h @ pwconv1_w^T + pwconv1_b) @ pwconv2_w^T + pwconv2_b)
//
// x: (N, C) fp32 residual stream (channels-last rows), updated in place.
// h: (N, C) the block's LayerNorm output: float (AC_PREC_FP32) or __nv_bfloat16 bits (AC_PREC_BF16).
// pwconv1_w: (4C, C), pwconv2_w: (C, 4C) as nn.Linear stores them: float for FP32, bf16 for BF16.
// pwconv1_b (4C), pwconv2_b (C), gamma (C, the block's `gamma` / scale_layer): float always.
// All pointers are device pointers; everything runs on `stream`, asynchronously.
//
// Paths (chosen per call, same results within the tolerances of tests/tolerances.h):
//  - BF16, C in {96, 192, 384, 768}, h/pwconv1_w/pwconv2_w 16-byte aligned, a GPU with the shared memory the
//    tile configuration needs (42-120 KB per block: A100, H100, H200; sm_86/89 lack it at C = 768): one fused
//    tensor-core kernel; the (N, 4C) hidden activations never leave the SM (bf16 operands, fp32 accumulation, bias + GELU in fp32).
//  - otherwise (FP32 always; BF16 for other C % 8 == 0, e.g. the tiny test models, unaligned pointers, or a
//    GPU short of shared memory):
//    cuBLAS GEMM (FP32: CUBLAS_COMPUTE_32F_PEDANTIC, no TF32) -> bias + GELU kernel -> cuBLAS GEMM -> epilogue
//    kernel (bias2, gamma, residual), in row chunks through the caller's workspace.
#ifndef AC_CONVNEXT_MLP_H
#define AC_CONVNEXT_MLP_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "../host/ac.h"
#include "gpu_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// Bytes of device workspace ac_convnext_mlp needs for these shapes (0 if N == 0). At most ~64 MiB whatever N:
// the unfused path works through the rows in chunks that fit. Always pass at least this much, even where the
// fused path will run (it needs none, but may fall back to the unfused one).
size_t ac_convnext_mlp_workspace(ac_precision prec, int64_t N, int C);

// The block MLP above. AC_ERR_INVALID_ARG (checked on the host, before any CUDA call) for an unknown precision,
// N < 0, C <= 0, C % 8 != 0 or C > 65536, a NULL pointer (workspace may be NULL only when the required size is 0), or
// workspace_bytes below ac_convnext_mlp_workspace(prec, N, C). N == 0 does nothing.
ac_status ac_convnext_mlp(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                          const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b, const float *gamma,
                          float *x, void *workspace, size_t workspace_bytes, cudaStream_t stream);

// The same operation, always through the unfused cuBLAS path (the fallback above): the benchmark's baseline and
// a second implementation the tests check the fused kernel against.
ac_status ac_convnext_mlp_unfused(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                                  const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b,
                                  const float *gamma, float *x, void *workspace, size_t workspace_bytes,
                                  cudaStream_t stream);

// 1 if these arguments qualify for the fused kernel (BF16, a tuned C, aligned pointers); host only. The
// device's shared memory decides the rest (see above).
int ac_convnext_mlp_is_fused(ac_precision prec, int C, const void *h, const void *pwconv1_w, const void *pwconv2_w);

// Argument checks shared by both entry points (host only, no CUDA call): AC_OK or AC_ERR_INVALID_ARG.
ac_status ac_convnext_mlp_check_args(const char *who, ac_precision prec, int64_t N, int C, const void *h,
                                     const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                     const float *pwconv2_b, const float *gamma, const float *x,
                                     const void *workspace, size_t workspace_bytes);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
// nn.GELU() (approximate='none'): 0.5 v (1 + erf(v / sqrt 2)), in host/ref/ref_ops.c's order; erff is CUDA's
// (max 2 ulp), where the CPU oracle uses a rational erf within 4.2e-7.
static __device__ __forceinline__ float ac_mlp_gelu_erf(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
}
#endif
#endif
