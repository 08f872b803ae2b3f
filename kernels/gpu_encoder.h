// The CNext-trans encoder on the device for a batch of clips of any lengths: front end (kernels/logmel.h) ->
// stem (stem.h) -> 4 ConvNeXt stages (dwconv_ln.h + the pointwise MLP, downsample.h + linear.h between
// stages) -> mean over frequency (freq_mean.h) -> projection Linear + ReLU (linear.h). Mirrors ac_model_encode
// (host/model.c) clip by clip: the clips are packed along time, never padded into each other, so a clip's result
// does not depend on what else is in the batch (up to the GEMMs' own row-independent rounding).
// Activations are channels-last (tokens, C) fp32 (the residual stream and every reduction); with AC_PREC_BF16
// the block MLPs' operands (LayerNorm outputs, GELU outputs, weights) are fp16 (kernels/convnext_mlp_operand.cuh:
// same tensor-core rate as bf16, 3 more bits) and the downsample GEMMs multiply split bf16 pairs (~fp32 accuracy,
// kernels/decoder_linear.h), accumulation fp32 everywhere. The front end: FP32 (validation) takes the DFT as a
// DGEMM on the checkpoint's matrices in double, exactly the oracle's arithmetic; BF16 a windowed float32 FFT and
// one kernel for power, mel, log and bn0 (kernels/logmel.h; AC_STFT=fft32|fft|gemm overrides, fft: the FFT in
// double).
// Device memory, grown on demand and kept between calls: ~23 MB per 10 s clip of the CoNeTTE model in bf16, ~25 MB in
// fp32 (two residual buffers 5.4 MB each, the downsample columns 5.4 MB, h 2.7 MB in bf16, bn0 0.9 MB, two upload slots
// of the batch's PCM 1.3 MB each as float), plus the front end's scratch (~270 MB in double, ~135 MB fft32, processed
// in chunks) and the MLP's workspace (<= 64 MB); a batch of 512 such clips needs ~12 GB in bf16. Host: one pinned
// staging buffer of the batch's PCM. The upload runs on a stream of the encoder's own and overlaps the previous call's
// kernels (gpu_encoder.cu).
// Not thread-safe: one host thread per ac_gpu_model at a time.
//
//   const float *mem; int64_t off[n]; int nf[n], len[n]; ac_status cs[n];
//   ac_gpu_encode(g, n, x, n_samples, &mem, off, nf, len, cs);
//   // clip i: rows [off[i], off[i] + nf[i]) of the (sum nf, D) device matrix mem; the first len[i] are valid.
#ifndef AC_GPU_ENCODER_H
#define AC_GPU_ENCODER_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_model.h"
#include "logmel.h"

#ifdef __cplusplus
extern "C" {
#endif

// Encodes n clips (mono float32 at the model rate, host memory, as ac_model_encode takes). They cross PCIe as
// int16 when every sample is exactly one (a 16-bit file at the model rate, taken as decoded), else as float
// (ac_gpu_encode_ex's AC_PCM_F32_PACK): the result is bit for bit the same either way. On return *memory is
// a device buffer owned by g (valid until the next call) with the clips' projected frames packed: clip i's frames
// are rows [mem_off[i], mem_off[i] + n_frames[i]) of a (sum n_frames, D) row-major matrix; the first mem_len[i]
// are valid (same meaning as ac_model_encode). Per-clip failures (too short: AC_ERR_AUDIO) -> clip_status[i] with
// n_frames[i] = mem_len[i] = 0; the others still run. Returns AC_ERR_NOMEM (hint: smaller batch) when the device
// is out of memory, after which g stays usable.
// The work is queued on ac_gpu_stream(g) and may still be running on return: read *memory on that stream, or
// cudaStreamSynchronize(ac_gpu_stream(g)) first (the stream is non-blocking: legacy-stream copies do not wait).
ac_status ac_gpu_encode(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                        const float **memory, int64_t *mem_off, int *n_frames, int *mem_len, ac_status *clip_status);

// Receives each stage of clip `clip` (the index in the caller's arrays) in the upstream layout with the stage names
// of host/model.h ac_dump_fn: logmel, bn0 (T, n_mels); stem, stage0..3 (C, T, F); frame_embs (T', C3);
// projection (D, T'). Host memory, valid during the call.
typedef void (*ac_gpu_dump_fn)(void *ctx, int clip, const char *stage, const float *data, int ndim,
                               const int64_t *shape);

// ac_gpu_encode with the PCM kind of x (AC_PCM_F32: const float *, sent as float; AC_PCM_F32_PACK: const float *,
// sent as int16 when lossless; AC_PCM_S16: const int16_t *, x / 32768) and an optional dump (synchronises after
// every stage; NULL for none).
ac_status ac_gpu_encode_ex(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *const *x, const int64_t *n_samples,
                           ac_gpu_dump_fn dump, void *dump_ctx, const float **memory, int64_t *mem_off, int *n_frames,
                           int *mem_len, ac_status *clip_status);

// ac_gpu_encode for PCM already on the device (memory of the model's device, e.g. decoded there or uploaded
// once for a benchmark): the n clips packed back to back in d_pcm, clip i's n_samples[i] samples right after
// clip i-1's, as float (AC_PCM_F32) or int16 (AC_PCM_S16, x / 32768). Only the offsets cross PCIe. Results,
// per-clip statuses and the stream contract as ac_gpu_encode; d_pcm must stay unchanged until the work queued on
// ac_gpu_stream(g) has read it. AC_ERR_INVALID_ARG when d_pcm is not device memory of the model's device.
ac_status ac_gpu_encode_resident(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *d_pcm, const int64_t *n_samples,
                                 const float **memory, int64_t *mem_off, int *n_frames, int *mem_len,
                                 ac_status *clip_status);

// The PCM kind the last encode call sent to the device (AC_PCM_F32 or AC_PCM_S16; AC_PCM_F32 before any).
ac_pcm_kind ac_gpu_encoder_staged_kind(ac_gpu_model *g);
// Shortest clip (samples at the model rate) the encoder accepts; = ac_model_min_samples.
int64_t ac_gpu_encoder_min_samples(const ac_gpu_model *g);
// Prepares the encoder's constants (reordered weights, FFT plan) now rather than on the first call.
ac_status ac_gpu_encoder_prepare(ac_gpu_model *g);
// The path each ConvNeXt stage's pointwise MLP takes (kernels/convnext_mlp.h), e.g. "mma/mma/unfused/unfused";
// AC_MLP_PATH=unfused|wmma|mma in the environment overrides the choice where eligible (unfused: the baseline when
// a result looks wrong). A static string of the encoder's, or "?" when the encoder cannot be prepared.
const char *ac_gpu_encoder_mlp_paths(ac_gpu_model *g);

// BF16 mode: an upper bound, valid for ANY input, on the magnitude of the ConvNeXt MLPs' input-dependent fp16
// operands (the LayerNorm outputs h and the GELU outputs), computed from the checkpoint at load, and the block
// ("stages.S.K", a static string of the encoder's) where it is largest; 0 and "" in FP32. At or below 65504 no
// value can be clamped (kernels/convnext_mlp_operand.cuh); above it the encoder warned once on stderr at load.
ac_status ac_gpu_encoder_fp16_bound(ac_gpu_model *g, double *bound, const char **block);

// The front end's STFT method for this precision: AC_STFT_DFT_GEMM in FP32, AC_STFT_FFT32 in BF16, unless the
// environment's AC_STFT=fft32|fft|gemm overrides it (read at each call; the encoder reads it once, at its creation).
ac_stft_method ac_gpu_stft_method(ac_precision prec);
// The method's AC_STFT name: "gemm", "fft" or "fft32".
const char *ac_gpu_stft_name(ac_stft_method m);

#ifdef __cplusplus
}
#endif
#endif
