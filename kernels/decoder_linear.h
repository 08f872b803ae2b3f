// The decoder's linear layers on the device: y (M, N) = x (M, K) . W^T + b, W (N, K) as nn.Linear stores it,
// optionally followed by the erf GELU of nn.TransformerDecoderLayer's feed-forward (aac_tfmer.py, activation
// "gelu"). Row-major, contiguous. M is the number of live rows, read on the device (*d_M) so a step needs no
// host synchronisation; the grid covers M_max rows and tiles past *d_M leave at once.
// Batch invariance: every output element is summed over k in one fixed order that depends on K only, so a row
// gives bit-identical results whatever else is in the batch (the contract of ac_caption_clips). That is why
// these are hand-written tiles rather than cuBLAS, whose algorithm (split-K, tile shape) changes with M.
#ifndef AC_DECODER_LINEAR_H
#define AC_DECODER_LINEAR_H

#include <cuda_runtime_api.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// W_bf16: NULL for FP32 (CUDA cores, fp32 products and sums); else the same matrix in bf16 (N, K): tensor
// cores (WMMA 16x16x16), x rounded to bf16, fp32 accumulation. d_M: device int, or NULL for M = M_max.
ac_status ac_gpu_linear(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                        const float *b, int N, int gelu, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
