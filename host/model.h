// The CNext-trans captioning model on the CPU: weights from a model file (weights/FORMAT.md), the encoder
// (front end -> ConvNeXt -> frame embeddings -> projection), the decoder with KV caches, and captioning of a
// batch of clips with the upstream beam search. Float32 throughout; the oracle for the CUDA path.
//
//   ac_model *m;  ac_model_load("conette.safetensors", &m);
//   ac_caption cap;  ac_caption_clip(m, x32, n32, &params, &cap);   // x32: mono 32 kHz (ac_audio_to_model_rate)
//   ac_model_free(m);
#ifndef AC_MODEL_H
#define AC_MODEL_H

#include "ac.h"
#include "model_file.h"

#ifdef __cplusplus
extern "C" {  // the CUDA launchers (kernels/) include this
#endif

#define AC_MAX_BEAM 16
#define AC_MAX_PRED 256

typedef struct ac_model ac_model;

ac_status ac_model_load(const char *path, ac_model **out);
void ac_model_free(ac_model *m);
const ac_model_config *ac_model_config_of(const ac_model *m);
const ac_frontend *ac_model_frontend(const ac_model *m);

// Receives every intermediate stage, in the upstream layout, with the stage names of the fixture manifest
// (tools/make_fixtures.py): logmel (T, n_mels), bn0 (T, n_mels), stem (C0, T0, F0), stage0..3 (Cs, Ts, Fs),
// frame_embs (T', C3), projection (D, T').
typedef void (*ac_dump_fn)(void *ctx, const char *stage, const float *data, int ndim, const int64_t *shape);

// Encodes one clip (x: mono at the model rate, n samples). *memory (T', D) is malloc'ed; *mem_len is the number
// of valid frames (the reference's frame_embs_lens), <= T'. Batch size 1 by construction: no padding exists.
ac_status ac_model_encode(const ac_model *m, const float *x, int64_t n, ac_dump_fn dump, void *dump_ctx,
                          float **memory, int *n_frames, int *mem_len);
// Shortest input (samples at the model rate) the encoder accepts: every stage keeps at least one frame.
int64_t ac_model_min_samples(const ac_model *m);

// ---- decoder ------------------------------------------------------------------------------------------------
typedef struct ac_decoder ac_decoder;
// Prepares decoding for n_clips clips (cross-attention keys/values computed once per clip, shared by its rows);
// up to max_rows hypothesis rows and max_steps tokens per row.
ac_status ac_decoder_begin(const ac_model *m, int n_clips, float *const *memory, const int *n_frames,
                           const int *mem_len, int max_rows, int max_steps, ac_decoder **out);
// Logits (n_rows, V) for the token at position `step` of each row (row r belongs to clip row_clip[r]); the rows'
// earlier tokens are in the cache. tokens: (n_rows,) the token at position `step`.
ac_status ac_decoder_step(ac_decoder *d, int step, int n_rows, const int *row_clip, const int *tokens, float *logits);
// Rows after a beam step: new row r continues old row src[r] (caches for positions 0..step are gathered).
void ac_decoder_reorder(ac_decoder *d, int step, int n_new, const int *src);
void ac_decoder_end(ac_decoder *d);

// Teacher forcing: logits (S, V) for inputs tokens[0..S-1] (the first is the task/BOS token).
ac_status ac_model_forcing(const ac_model *m, const float *memory, int n_frames, int mem_len, const int *tokens,
                           int S, float *logits);

// ---- captioning -----------------------------------------------------------------------------------------------
typedef struct {
    int beam_size;      // <= 0: the model's default
    int min_pred_size;  // < 0: default
    int max_pred_size;  // <= 0: default
    int task;           // index into the model's task names; < 0: its default task (or <bos> without tasks)
} ac_decode_params;

typedef struct {
    int n_tokens;                 // generated tokens after the BOS/task token, EOS included when emitted
    int tokens[AC_MAX_PRED];
    float score;                  // sum of log-probs / n_tokens (the reference's average, EOS counted)
    char text[4096];
} ac_hyp;

typedef struct {
    ac_status status;
    char error[512];
    int n_beams;
    int best;                     // index of the chosen beam (first max of score)
    ac_hyp beams[AC_MAX_BEAM];    // the reference's slot order
    int n_frames, mem_len;
} ac_caption;

// Captions n clips together (encoders one by one, beam search over all clips' rows at once). A clip's result is
// bit-identical whatever else is in the batch. Per-clip failures (too short) go to out[i].status.
ac_status ac_caption_clips(const ac_model *m, int n, const float *const *x, const int64_t *n_samples,
                           const ac_decode_params *p, ac_caption *out);

// A beam search's result for one clip (src: n_beams, best, beams' tokens and scores) into dst, texts
// detokenized; dst's other fields are left as they are. Shared by the CPU and GPU captioners.
void ac_caption_set_beams(const ac_model_config *cfg, const ac_caption *src, ac_caption *dst);

// Detokenize ids with the model's tokenizer rules (FORMAT.md tokenizer.post_decoding).
void ac_detokenize(const ac_model_config *cfg, const int *ids, int n, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
