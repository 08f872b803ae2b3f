// Token embedding * emb_scale + learned position (conette nn/decoders/aac_tfmer.py forward: emb_layer, then
// pos_encoding; models.md decoder). x: (rows, D) row-major; one block per row.
#include "common.cuh"
#include "decoder_embed.h"

#include <math.h>

#include "decoder_embed_kernel.cuh"

extern "C" ac_status ac_gpu_decoder_embed(const int *tokens, int max_rows, const int *d_rows,
                                          const float *emb_layer_weight, int V, const float *pos_embedding, int step,
                                          float emb_scale, int D, float *x, cudaStream_t stream) {
    if (!tokens || !emb_layer_weight || !pos_embedding || !x || max_rows < 0 || V < 1 || D < 1 || step < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "decoder embed: %d rows, V %d, D %d, step %d", max_rows, V, D, step);
    if (max_rows == 0) return AC_OK;
    decoder_embed_kernel<<<max_rows, 128, 0, stream>>>(tokens, max_rows, d_rows, emb_layer_weight, V,
                                                       pos_embedding + (size_t)step * D, emb_scale, D, x);
    KERNEL_CHECK();
    return AC_OK;
}
