// Beam search on the device: the rules of host/beam.c (conette nn/decoding/beam.py:22-269, models.md §1.9) for
// many clips at once, with every piece of state in device memory so a step needs no host synchronisation.
//
// Rows: the live hypotheses of every clip, clip by clip (clip c owns rows row_off[c] .. row_off[c]+n_live[c]-1),
// in the order host/beam.c keeps them; max_rows = n_clips * beam_size. Step 0 starts from one row per clip.
// Per step:  logits (max_rows, V) for the current rows (only the first *n_rows are read)  ->  masked in place
// (EOS before min_pred_size, content-word repetitions), log-softmax, top-k over each clip's live rows,
// finished hypotheses written to their slots, the surviving rows compacted: new row r continues old row
// src_row[r] and its next input token is tokens[r].
#ifndef AC_BEAM_SEARCH_H
#define AC_BEAM_SEARCH_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_gpu_beam ac_gpu_beam;

typedef struct {
    int n_clips;
    int beam_size, min_pred_size, max_pred_size;  // 1..AC_MAX_BEAM, >= 0, 1..AC_MAX_PRED-1
    int eos_id, vocab_size;
    const uint8_t *forbid_rep_mask;  // host (V,), copied; NULL: no repetition ban
} ac_gpu_beam_params;

ac_status ac_gpu_beam_create(const ac_gpu_beam_params *p, cudaStream_t stream, ac_gpu_beam **out);
void ac_gpu_beam_free(ac_gpu_beam *b);
// Resets the search: one row per clip holding bos_ids[c] (host array).
ac_status ac_gpu_beam_init(ac_gpu_beam *b, const int *bos_ids);
// One step (0-based index `step` of the token being chosen). logits: device (max_rows, V), overwritten.
// All launches on the stream; nothing synchronises.
ac_status ac_gpu_beam_step(ac_gpu_beam *b, int step, float *logits);
// Copies the results (synchronises): out[c].n_beams, best, beams[j].n_tokens/tokens/score, as ac_beam_search.
ac_status ac_gpu_beam_results(ac_gpu_beam *b, ac_caption *out);

// Device views of the row state, valid until the next ac_gpu_beam_step/init:
typedef struct {
    const int *n_rows;    // (1) rows alive now
    const int *row_clip;  // (max_rows) clip of each row
    const int *tokens;    // (max_rows) the token each row feeds to the decoder at this step
    const int *src_row;   // (max_rows) after a step: new row r continues old row src_row[r]
    const int *row_off;   // (n_clips) first row of each clip
    const int *n_live;    // (n_clips) rows of each clip (0: finished)
    const int *prefix;    // (max_rows, max_pred_size + 1) tokens so far, the BOS/task token first
    int max_rows, prefix_stride;
} ac_gpu_beam_rows;
ac_gpu_beam_rows ac_gpu_beam_rows_view(const ac_gpu_beam *b);

// Copies the row state to the host (synchronises; for tests): n_rows, row_clip and prefix (max_rows x stride).
ac_status ac_gpu_beam_download_rows(const ac_gpu_beam *b, int *n_rows, int *row_clip, int *prefix);

// Copies rows of an int table: dst[r][0..n_cols-1] = src[src_row[r]][0..n_cols-1] for r < *n_rows, then
// dst[r][n_cols] = last[r] when last is not NULL. Tables are (max_rows, stride). Used for the prefixes and for
// the decoder's KV-cache indirection.
ac_status ac_gpu_gather_rows(const int *src, int *dst, int stride, int n_cols, const int *src_row, const int *last,
                             const int *n_rows, int max_rows, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
