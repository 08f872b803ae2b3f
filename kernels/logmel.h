// The CoNeTTE front end on the device for a packed batch: waveform -> log-mel (T, n_mels) -> bn0, per clip.
// Mirrors host/ref/ref_logmel.c (torchlibrosa Spectrogram + LogmelFilterBank as conette configures them,
// convnext.py:144-180, 290-292): centre reflect padding of n_fft/2, windowed DFT with hop `hop`,
// power = re^2 + im^2, mel = power @ melW, 10*log10(max(mel, amin)) - 10*log10(max(amin, 1)), no top_db,
// then eval BatchNorm over the mel axis folded into x * alpha + beta exactly as ac_bn0_ref folds it.
//
// Why cuFFT and not the checkpoint's conv_real/conv_imag as a GEMM: the dense DFT costs 2 * n_fft * (n_fft + 2)
// FLOP per frame (2.1 GFLOP per 10 s clip, in fp32 because the deep bins need it: ~5 % of the whole encoder's
// arithmetic but on CUDA cores, 1/15 of the bf16 tensor rate), the FFT ~0.03 GFLOP. The checkpoint's matrices
// are a windowed DFT (torchlibrosa STFT.__init__); ac_stft_window_from_dft recovers the window from row 0
// (cos 0 = 1, so exactly the stored window) and refuses a model whose matrices are anything else.
//
// Layouts: pcm packed per clip at element offsets pcm_off (n + 1, int64, device); frames packed per clip at
// frame offsets foff (n + 1, int, device); every output (R, n_mels) row-major, R = foff[n].
#ifndef AC_LOGMEL_H
#define AC_LOGMEL_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// PCM as it crosses PCIe: float32 in [-1, 1], or int16 (x / 32768, exact: the 16-bit source at the model rate
// is sent as is, half the bytes).
typedef enum { AC_PCM_F32 = 0, AC_PCM_S16 = 1 } ac_pcm_kind;

// window (n_fft) from conv_real/conv_imag (n_fft/2 + 1, n_fft) as stored; AC_ERR_FORMAT if they are not
// window * exp(-2 pi i k n / N) to float32 rounding (1e-6 absolute: entries are <= 1 in magnitude).
ac_status ac_stft_window_from_dft(const float *conv_real, const float *conv_imag, int n_fft, float *window);
// bn0 folded as ac_bn0_ref does: alpha = (float)(weight / sqrt(var + eps)), beta = bias - mean * alpha.
void ac_bn0_fold(const float *weight, const float *bias, const float *mean, const float *var, float eps, int n_mels,
                 float *alpha, float *beta);

typedef struct ac_logmel_plan ac_logmel_plan;
typedef struct {
    int n_fft, hop, n_mels;
    float amin;
    const float *window;           // host (n_fft)
    const float *alpha, *beta;     // host (n_mels), from ac_bn0_fold
    const float *melW;             // device (n_fft/2 + 1, n_mels) as stored (logmel_extractor.melW)
    void *cublas;                  // cublasHandle_t; the plan issues its GEMM on `stream`
    cudaStream_t stream;
} ac_logmel_params;

ac_status ac_logmel_plan_create(const ac_logmel_params *p, ac_logmel_plan **out);
void ac_logmel_plan_free(ac_logmel_plan *p);
// Device scratch bytes ac_logmel_run needs for R frames.
size_t ac_logmel_workspace(const ac_logmel_plan *p, int64_t R);

// bn0_out (R, n_mels) = bn0(log-mel) of every clip; logmel_out (R, n_mels), when not NULL, the log-mel before
// bn0 (dumps). n clips, pcm_off/foff device arrays (see above); clip k must have at least n_fft/2 + 1 samples and
// exactly pcm_len/hop + 1 frames (the launcher cannot see device arrays: the caller guarantees it).
ac_status ac_logmel_run(ac_logmel_plan *p, ac_pcm_kind kind, const void *pcm, const int64_t *pcm_off,
                        const int *foff, int n, int64_t R, void *workspace, size_t workspace_bytes,
                        float *logmel_out, float *bn0_out);

#ifdef __cplusplus
}
#endif
#endif
