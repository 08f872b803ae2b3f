// nn.Linear on the device: y (M, N) = x (M, K) . W^T + b, optionally ReLU'd (the projection, pl_modules/
// common.py:59-78; the downsample convs as GEMMs). W (N, K) as nn.Linear stores it; y float32.
// AC_PREC_FP32: x, W float, cublasSgemm (the model's handle is in pedantic math: no TF32). AC_PREC_BF16: x, W
// __nv_bfloat16, cublasGemmEx on tensor cores with fp32 accumulation. Like ref_linear, y starts as the bias and
// the product is accumulated onto it (beta = 1).
#ifndef AC_LINEAR_H
#define AC_LINEAR_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_types.h"

#ifdef __cplusplus
extern "C" {
#endif

ac_status ac_linear(void *cublas, ac_precision prec, int64_t M, int K, int N, const void *x, const void *W,
                    const float *b, int relu, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
