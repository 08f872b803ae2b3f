// Token embedding and learned positions of the decoder (aac_tfmer.py: emb_layer(tok) * emb_scale + pos_embedding
// at the step's position, dropout off), for the live rows of one decode step.
#ifndef AC_DECODER_EMBED_H
#define AC_DECODER_EMBED_H

#include <cuda_runtime_api.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// x (rows, D) row r = emb_layer_weight[tokens[r]] * emb_scale + pos_embedding[step], for r < *d_rows (device
// int; NULL: max_rows). emb_layer_weight (V, D), pos_embedding (positions, D) as stored. A token outside
// [0, V) writes NaN into its row, so it can't pass unnoticed.
ac_status ac_gpu_decoder_embed(const int *tokens, int max_rows, const int *d_rows, const float *emb_layer_weight,
                               int V, const float *pos_embedding, int step, float emb_scale, int D, float *x,
                               cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
