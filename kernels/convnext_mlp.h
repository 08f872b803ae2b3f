// The pointwise MLP of a ConvNeXt block with its layer scale and residual (conette nn/encoders/convnext.py:22-74,
// host/model.c encoder loop: pwconv1 -> GELU(erf) -> pwconv2 -> x += gamma * y), C-callable launchers.
//
//   x += gamma * (GELU_erf(h @ pwconv1_w^T + pwconv1_b) @ pwconv2_w^T + pwconv2_b)
//
// x: (N, C) fp32 residual stream (channels-last rows), updated in place.
// h: (N, C) the block's LayerNorm output: float (AC_PREC_FP32) or fp16, the MLP's
// operand type in the reduced precision (AC_PREC_BF16; kernels/convnext_mlp_operand.cuh says why fp16).
// pwconv1_w: (4C, C), pwconv2_w: (C, 4C) as nn.Linear stores them: float for FP32, fp16 for BF16
// (ac_convnext_mlp_weight makes those copies).
// pwconv1_b (4C), pwconv2_b (C), gamma (C, the block's `gamma` / scale_layer): float always.
// All pointers are device pointers; everything runs on `stream`, asynchronously.
//
// Paths (ac_mlp_path; same results within the tolerances of tests/tolerances.h):
//  - "mma": BF16 mode, C in {96, 192}: one FlashAttention-style tensor-core kernel (convnext_mlp_mma_kernel.cuh);
//    the (N, 4C) hidden activations never leave the registers (fp16 operands, fp32 accumulation, bias + GELU
//    in fp32). Needs h/pwconv1_w/pwconv2_w 16-byte and x 8-byte aligned, and 70 / 136 KB of shared memory per
//    block (A100, H100, H200).
//  - "split": BF16 mode, C % 128 == 0 (384, 768): two tensor-core GEMMs of ours (convnext_mlp_split_kernel.cuh) whose
//    epilogues apply bias + GELU (writing the hidden activations once, as fp16, through the workspace in row
//    chunks) and bias + gamma + residual; same alignment needs as "mma", 60 KB of shared memory per block.
//  - "wmma": BF16 mode, C in {96, 192, 384, 768}: the first fused kernel (WMMA, hidden chunks through shared memory),
//    kept as a measured baseline; 42-120 KB of shared memory.
//  - "unfused": any precision and C % 8 == 0: cuBLAS GEMM (FP32: CUBLAS_COMPUTE_32F_PEDANTIC, no TF32) -> bias +
//    GELU kernel -> cuBLAS GEMM -> epilogue kernel (bias2, gamma, residual), in row chunks through the caller's
//    workspace.
// ac_convnext_mlp takes "mma" at C <= 192 and "split" at C <= 384 where eligible and the device fits them, else
// "unfused" (ac_convnext_mlp_choose says why); AC_MLP_PATH=unfused|wmma|mma|split in the environment overrides
// that where eligible.
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
// N < 0, C <= 0, C % 8 != 0 or C > 65536, a NULL pointer (workspace may be NULL only when the required size is 0),
// a workspace not 16-byte aligned, or workspace_bytes below ac_convnext_mlp_workspace(prec, N, C). N == 0 does
// nothing.
ac_status ac_convnext_mlp(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                          const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b, const float *gamma,
                          float *x, void *workspace, size_t workspace_bytes, cudaStream_t stream);

// The same operation, always through the unfused cuBLAS path (the fallback above): the benchmark's baseline and
// a second implementation the tests check the fused kernel against.
ac_status ac_convnext_mlp_unfused(ac_precision prec, int64_t N, int C, const void *h, const void *pwconv1_w,
                                  const float *pwconv1_b, const void *pwconv2_w, const float *pwconv2_b,
                                  const float *gamma, float *x, void *workspace, size_t workspace_bytes,
                                  cudaStream_t stream);

// The BF16 mode's operand copy of a pwconv weight: w_op (n fp16, device) = w (n float, device), rounded to nearest
// even. AC_ERR_INVALID_ARG naming `name` if any element is beyond fp16's range (|w| >= 65520, which rounds to inf)
// or not a number (the copy is then saturated, and should not be used). Synchronises `stream` to read that
// verdict: a load-time call.
ac_status ac_convnext_mlp_weight(const char *name, const float *w, int64_t n, void *w_op, cudaStream_t stream);

typedef enum { AC_MLP_AUTO = 0, AC_MLP_UNFUSED = 1, AC_MLP_WMMA = 2, AC_MLP_MMA = 3, AC_MLP_SPLIT = 4 } ac_mlp_path;

// "auto", "unfused", "wmma", "mma", "split"
const char *ac_mlp_path_name(ac_mlp_path path);

// 1 if `path` can run these arguments (precision, C, pointer alignment); host only, no CUDA call. The device's
// shared memory decides the rest (ac_convnext_mlp_with reports it).
int ac_convnext_mlp_eligible(ac_mlp_path path, ac_precision prec, int C, const void *h, const void *pwconv1_w,
                             const void *pwconv2_w, const float *x);

// The path ac_convnext_mlp takes for these arguments on the current device (never AC_MLP_AUTO).
ac_mlp_path ac_convnext_mlp_choose(ac_precision prec, int C, const void *h, const void *pwconv1_w,
                                   const void *pwconv2_w, const float *x);

// The block MLP through one path (AC_MLP_AUTO: ac_convnext_mlp's choice); a fused path the arguments or the
// device cannot take is AC_ERR_INVALID_ARG, never a silent fallback (the tests and benchmarks name what they run).
ac_status ac_convnext_mlp_with(ac_mlp_path path, ac_precision prec, int64_t N, int C, const void *h,
                               const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                               const float *pwconv2_b, const float *gamma, float *x, void *workspace,
                               size_t workspace_bytes, cudaStream_t stream);

// Argument checks shared by both entry points (host only, no CUDA call): AC_OK or AC_ERR_INVALID_ARG.
ac_status ac_convnext_mlp_check_args(const char *who, ac_precision prec, int64_t N, int C, const void *h,
                                     const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                     const float *pwconv2_b, const float *gamma, const float *x,
                                     const void *workspace, size_t workspace_bytes);

#ifdef __cplusplus
}
#endif

#endif
