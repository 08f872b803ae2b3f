// The encoder's nn.Linear layers on the device: y (M, N) = x (M, K) . W^T + b, optionally ReLU'd. x, y float32,
// W (N, K) as nn.Linear stores it. Used for the projection of the frame embeddings (pl_modules/common.py:59-78:
// Linear then ReLU; fp32 in both precisions: (T', 768) x (768, 256) is ~0.1 % of the encoder's work) and the
// downsample convs as GEMMs over their im2col columns (BF16 mode: split products, W_bf16 + W_bf16_lo).
// The product is ac_gpu_linear's fixed-order tiles (kernels/decoder_linear.h: W_bf16 / W_bf16_lo NULL for fp32),
// so a clip's rows do not depend on its batch; this adds the host-side row count (M up to 2^31 - 1) and the ReLU.
#ifndef AC_LINEAR_H
#define AC_LINEAR_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

ac_status ac_linear(int64_t M, int K, int N, const float *x, const float *W, const void *W_bf16,
                    const void *W_bf16_lo, const float *b, int relu, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
