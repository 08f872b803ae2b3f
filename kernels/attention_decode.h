// Fused attention of one decode step (nn.MultiheadAttention in eval, softmax(q k^T / sqrt(hd)) v per head;
// conette aac_tfmer.py through nn.TransformerDecoderLayer), for every live row of every clip in one launch per
// layer: one block per (clip, head), one warp per row of that clip.
//
// Rows follow the beam search's layout (kernels/beam_search.h): clip c owns rows row_off[c] ..
// row_off[c] + n_live[c] - 1 (device arrays); a clip with n_live 0 costs one empty block.
#ifndef AC_ATTENTION_DECODE_H
#define AC_ATTENTION_DECODE_H

#include <cuda_runtime_api.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// Self-attention with a KV cache and beam indirection. qkv (max_rows, 3D): the in_proj output of this step
// (q | k | v). cache (max_steps, max_rows, 2D) for this layer: position t of the row that was row i at step t
// holds k | v at cache[t][i]. anc (max_rows, max_steps): anc[r][t] = the row index at step t of row r's
// ancestor (filled by ac_gpu_gather_rows after each beam step; this kernel sets anc[r][step] = r and stores
// the step's k | v at cache[step][r]). out (max_rows, D). Keys 0..step are attended (no padding: causal by
// construction).
ac_status ac_gpu_attention_self(const float *qkv, float *cache, int *anc, int step, int max_steps,
                                const int *row_off, const int *n_live, int n_clips, int max_rows, int D, int nhead,
                                float *out, cudaStream_t stream);

// Cross-attention over each clip's memory, keys/values computed once per clip and shared by its rows.
// q (max_rows, D). mem_kv (total frames, 2D): frame f of clip c is row mem_off[c] + f, k | v. Keys at
// f >= mem_len[c] are masked (the reference's memory key padding mask). mem_off, mem_len: device (n_clips).
// max_mem_len: host, >= every mem_len (sizes the shared-memory staging of one head's keys and values).
ac_status ac_gpu_attention_cross(const float *q, const float *mem_kv, const int *mem_off, const int *mem_len,
                                 int max_mem_len, const int *row_off, const int *n_live, int n_clips, int D, int nhead,
                                 float *out, cudaStream_t stream);

// The largest max_mem_len whose shared-memory staging fits one block on the current device for this D and
// nhead (0 when the device cannot be queried): callers that round max_mem_len up (the decoder does, so that
// batches of different lengths share a captured CUDA graph) stay within it.
int ac_gpu_attention_cross_max_len(int D, int nhead);

#ifdef __cplusplus
}
#endif
#endif
