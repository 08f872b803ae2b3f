// The CNext-trans decoder and beam search on the device: many clips at once, from the encoder's packed memory
// to the beams of host/beam.c (same decisions; FP32 tokens identical to ac_caption_clips up to exact ties).
// Mirrors host/model.c ac_decoder_* + ac_beam_search (conette aac_tfmer.py + nn/decoding/beam.py).
//
//   per call:  cross-attention K/V of every clip, every layer, once (one GEMM per layer over all frames)
//   per step:  embedding -> 6 x [in_proj, self-attention over the KV cache, out_proj + LN1, q proj,
//              cross-attention, out_proj + LN2, linear1+GELU, linear2 + LN3] -> classifier -> beam step
//              every kernel over the live rows only (read on the device), so finished clips cost nothing;
//              "+ LN" through ac_gpu_linear_add_ln (BF16: the out_projs in one launch, linear2 split-K).
// The decoder's buffers live in the model's state slot 1 and are reused (grown when needed) across calls.
// AC_GPU_PROFILE=1: device time per part of the step (events between the parts, launched without graphs), summed
// over the calls and printed to stderr as "gpu decoder profile: ..." lines when the model is freed.
#ifndef AC_GPU_DECODER_H
#define AC_GPU_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "beam.h"
#include "gpu_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int steps;        // decode steps launched (<= max_pred_size; stops one step after every clip finished)
    double ms;        // wall time of the call (host clock, the call synchronises at its end)
    int graphs;           // 1: the steps replayed CUDA graphs (the default), 0: plain launches (AC_GPU_GRAPH=0,
                          // AC_SYNC, AC_GPU_PROFILE, or a failed capture)
    int graphs_captured;  // step graphs this call captured: 0 when it replayed kept ones
    int graph_fallback;   // 1: a capture failed (e.g. invalidated by another thread synchronising the device), so
                          // this call launched its steps plainly; later calls try again (backing off: gpu_decoder.cu)
    double enqueue_ms;    // host time spent issuing the steps (kernel or graph launches, not the waits): near
                          // the device's step time, the decoder is bound by launches, not kernels
} ac_gpu_decode_stats;

// n clips; memory: device (total frames, D) float32, clip i = rows mem_off[i] .. mem_off[i] + n_frames[i] - 1,
// of which the first mem_len[i] are attended (host arrays). bos_ids: host (n). p: resolved decoding parameters
// (beam_size, min/max_pred_size, eos_id, vocab_size, forbid_rep_mask on the host) as ac_beam_search takes them.
// Writes out[i].n_beams, best, beams[].n_tokens/tokens/score (not text, status, n_frames/mem_len).
ac_status ac_gpu_decode(ac_gpu_model *g, int n, const float *memory, const int64_t *mem_off, const int *n_frames,
                        const int *mem_len, const int *bos_ids, const ac_beam_params *p, ac_caption *out,
                        ac_gpu_decode_stats *stats);

// Device bytes the decoder's buffers take for n clips x beam rows, max_pred steps and `frames` memory frames in
// all (self-attention cache, cross K/V, activations, logits, beam state): for sizing batches. Pure C arithmetic.
size_t ac_gpu_decoder_bytes(const ac_model_config *c, int n, int beam, int max_pred, int64_t frames);

// The resolved decoding parameters of ac_caption_clips (host/model.c) for model config c: beam size, lengths,
// EOS, the first token (task or BOS). Pure C logic, tested on the CPU.
ac_status ac_gpu_resolve_params(const ac_model_config *c, const ac_decode_params *p, const uint8_t *forbid,
                                ac_beam_params *bp, int *bos);

#ifdef __cplusplus
}
#endif
#endif
