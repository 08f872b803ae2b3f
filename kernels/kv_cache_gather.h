// The KV cache reordered in place of an indirection (issue #6: "cache indirection or an in-place gather:
// measure"): after a beam step, every cached position of every layer follows its row, so that the next step's
// self-attention reads cache[t][r] directly. The decoder uses the indirection (kernels/attention_decode.h: an
// ancestor table of ints follows the rows instead, rows x steps ints against layers x steps x rows x 2D floats);
// this is the alternative bench_gpu_kv_reorder times against it.
#ifndef AC_KV_CACHE_GATHER_H
#define AC_KV_CACHE_GATHER_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// dst[l][t][r][0..width-1] = src[l][t][src_row[r]][0..width-1] for l < n_layers, t < n_steps, r < *d_rows
// (device int; NULL: max_rows). src and dst: n_layers blocks of layer_stride floats, each (steps, max_rows, width)
// (the decoder's cache: width = 2 d_model, k | v); src_row: device (max_rows), each < max_rows. Not in place:
// src and dst must not overlap. 16-byte copies where width % 4 == 0 and the buffers are aligned.
ac_status ac_gpu_kv_cache_gather(const float *src, float *dst, int n_layers, int64_t layer_stride, int n_steps,
                                 int max_rows, int width, const int *src_row, const int *d_rows, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
