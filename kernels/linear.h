// nn.Linear on the device, float32: y (M, N) = x (M, K) . W^T + b, optionally ReLU'd (the projection of the frame
// embeddings, pl_modules/common.py:59-78: Linear then ReLU). W (N, K) as nn.Linear stores it. The product is
// ac_gpu_linear's fixed-order fp32 tiles (kernels/decoder_linear.h), so a clip's rows do not depend on its batch;
// it stays fp32 in both precisions: (T', 768) x (768, 256) is ~0.1 % of the encoder's work.
#ifndef AC_LINEAR_H
#define AC_LINEAR_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

ac_status ac_linear(int64_t M, int K, int N, const float *x, const float *W, const float *b, int relu, float *y,
                    cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
