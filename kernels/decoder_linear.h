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
#include <stddef.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// W_bf16: NULL for FP32 (CUDA cores, fp32 products and sums); else the same matrix in bf16 (N, K): tensor
// cores (mma.sync m16n8k16), x rounded to bf16, fp32 accumulation. W_bf16_lo: NULL, or W's rounding remainder
// bf16(W - W_bf16) (ac_gpu_bf16_split_lo): then x is split alike and each product is x_lo W_hi + x_hi W_lo +
// x_hi W_hi, ~2^-16 relative instead of ~2^-8 (three tensor-core products). d_M: device int, or NULL for
// M = M_max.
ac_status ac_gpu_linear(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                        const void *W_bf16_lo, const float *b, int N, int gelu, float *y, cudaStream_t stream);

// The same with at most max_grid_y row tiles per launch (ac_gpu_linear: 65,535, CUDA's limit; more rows with a
// host-known M go in several launches, bit-identical). For the tests, which check that split with small limits.
ac_status ac_gpu_linear_grid(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                             const void *W_bf16_lo, const float *b, int N, int gelu, float *y, cudaStream_t stream,
                             int max_grid_y);

// The post-LN sublayer's end, x (M, N) = LayerNorm(x + in (M, K) . W^T + b) * ln_w + ln_b over the live rows
// (nn.TransformerDecoderLayer, norm_first=False: out_proj / linear2 then norm1-3; biased variance, eps), by one of
// three paths (ac_gpu_linear_add_ln_path), each row computed alone on every path:
//   AC_LIN_LN_FUSED   BF16 weights, N == 256 (CoNeTTE's d_model), K <= 512 (the out_projs): one launch,
//                     linear_ln_kernel (16 rows x 256 columns per block, the LayerNorm in its epilogue). Its values
//                     equal the two launches' up to the last bit of a statistic.
//   AC_LIN_LN_SPLITK  BF16 weights, K > 512 (linear2's 2048): the k range in chunks of 512 on a grid of tiles times
//                     chunks (linear_bf16_kernel, one chunk per grid.z: partial sums into scratch), then
//                     ac_gpu_add_layernorm_sum adds them in order with the bias; 192 blocks of 64 x 64 at 768 rows
//                     where the unsplit grid has 48. The chunks depend on K alone; the values differ from an
//                     unsplit sum in the last bits.
//   AC_LIN_LN_TWO     otherwise (FP32 weights, other widths) or under AC_LINEAR_LN=0 (to time the others):
//                     ac_gpu_linear into scratch, then ac_gpu_add_layernorm.
// scratch: device floats, at least ac_gpu_linear_add_ln_scratch (NULL where that is 0).
ac_status ac_gpu_linear_add_ln(const float *in, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                               const void *W_bf16_lo, const float *b, int N, float *x, const float *ln_w,
                               const float *ln_b, float eps, float *scratch, cudaStream_t stream);

typedef enum { AC_LIN_LN_TWO = 0, AC_LIN_LN_FUSED = 1, AC_LIN_LN_SPLITK = 2 } ac_lin_ln_path;

// The path ac_gpu_linear_add_ln takes for these weights and shape (and AC_LINEAR_LN).
ac_lin_ln_path ac_gpu_linear_add_ln_path(const void *W_bf16, int N, int K);

// Floats of scratch that ac_gpu_linear_add_ln's path needs for these weights and shape, whatever AC_LINEAR_LN
// says: M_max x N x ac_gpu_linear_splitk_chunks(K) for BF16 weights (the split-K path's partial sums), M_max x N
// for FP32 ones (the two launches).
size_t ac_gpu_linear_add_ln_scratch(const void *W_bf16, int M_max, int N, int K);

// The split-K path's chunks of 512 k for depth K (1 up to 512).
int ac_gpu_linear_splitk_chunks(int K);

// W_lo (n bf16, device) = bf16(W - W_hi) element by element, W (n float) and W_hi (n bf16, W rounded to nearest
// even) on the device: the second half of a split weight for ac_gpu_linear.
ac_status ac_gpu_bf16_split_lo(const float *W, const void *W_hi, int64_t n, void *W_lo, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
