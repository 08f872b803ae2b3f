// Captioning on the device: kernels/gpu_encoder.h (batched ConvNeXt encoder) + kernels/gpu_decoder.h (decoder
// and beam search), the GPU counterpart of ac_caption_clips (host/model.h).
//
//   ac_gpu_model *g;  ac_gpu_model_load("conette.safetensors", 0, AC_PREC_FP32, &g);
//   ac_caption *out = calloc(n, sizeof *out);
//   ac_gpu_caption_clips(g, n, x, n_samples, NULL, out);   // x[i]: mono at the model rate, host memory
#ifndef AC_GPU_CAPTION_H
#define AC_GPU_CAPTION_H

#include "gpu_model.h"
#include "logmel.h"  // ac_pcm_kind
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

// Same contract as ac_caption_clips (host/model.h): fills out[i] (ac_caption) for each clip, tokens, scores,
// text (ac_detokenize), per-clip failures in out[i].status / out[i].error. Bit-identical results per clip
// whatever the batch (the encoder packs clips without padding; every decoder kernel computes a row alone).
ac_status ac_gpu_caption_clips(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                               const ac_decode_params *p, ac_caption *out);

typedef struct {
    // CUDA events on the model's stream, the first recorded when the call starts (the stream is idle then):
    // encoder_ms includes, for host clips, the host's staging of the batch and what the upload left to wait for
    double encoder_ms, decoder_ms;
    int steps;  // decode steps launched
    double decoder_enqueue_ms;  // host time the decoder spent issuing its steps (ac_gpu_decode_stats.enqueue_ms)
    int decoder_graphs;         // the decoder's steps replayed CUDA graphs (ac_gpu_decode_stats.graphs)
    int decoder_graph_fallback; // a capture failed, its steps ran as plain launches (ac_gpu_decode_stats)
} ac_gpu_caption_stats;

// The same, with per-stage times (stats may be NULL).
ac_status ac_gpu_caption_clips_ex(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                                  const ac_decode_params *p, ac_caption *out, ac_gpu_caption_stats *stats);

// The same for PCM already on the device: the clips packed back to back as ac_gpu_encode_resident takes them
// (kernels/gpu_encoder.h), float or int16.
ac_status ac_gpu_caption_resident(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *d_pcm,
                                  const int64_t *n_samples, const ac_decode_params *p, ac_caption *out,
                                  ac_gpu_caption_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
