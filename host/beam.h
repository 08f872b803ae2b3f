// Beam search with the upstream decision rules (conette src/conette/nn/decoding/beam.py:22-269, models.md §1.9),
// over the hypotheses of many clips at once. The logits come from a source (the model's decoder, or a test's
// scripted logits), which keeps its own per-row state and is told how rows are reordered.
#ifndef AC_BEAM_H
#define AC_BEAM_H

#include "model.h"

#ifdef __cplusplus
extern "C" {  // the CUDA launchers (kernels/) include this
#endif

typedef struct {
    void *ctx;
    // logits (n_rows, V) for the token at position `step` of each row; tokens[r] is that token
    ac_status (*step)(void *ctx, int step, int n_rows, const int *row_clip, const int *tokens, float *logits);
    // new row r continues old row src[r]
    void (*reorder)(void *ctx, int step, int n_new, const int *src);
} ac_logits_source;

typedef struct {
    int beam_size, min_pred_size, max_pred_size;
    int eos_id, vocab_size;
    const uint8_t *forbid_rep_mask;  // (V,) 1: a token that may not appear twice in a hypothesis; NULL: none
} ac_beam_params;

// For each clip: out[c].beams[0..beam_size-1] in the reference's slot order, out[c].best = first max of score.
// Only n_beams, best, beams[].tokens/n_tokens/score are written.
ac_status ac_beam_search(const ac_beam_params *p, int n_clips, const int *bos_ids, const ac_logits_source *src,
                         ac_caption *out);

#ifdef __cplusplus
}
#endif
#endif
