// The CoNeTTE front end on the device for a packed batch: waveform -> log-mel (T, n_mels) -> bn0, per clip.
// Mirrors host/ref/ref_logmel.c (torchlibrosa Spectrogram + LogmelFilterBank as conette configures them,
// convnext.py:144-180, 290-292): centre reflect padding of n_fft/2, windowed DFT with hop `hop`,
// power = re^2 + im^2, mel = power @ melW, 10*log10(max(mel, amin)) - 10*log10(max(amin, 1)), no top_db,
// then eval BatchNorm over the mel axis folded into x * alpha + beta exactly as ac_bn0_ref folds it.
//
// Three ways to the spectrum; the first two in double up to the log (ref_logmel.c carries every sum in double):
//  - AC_STFT_DFT_GEMM (FP32, the validation mode): frames (R, n_fft) . [conv_real; conv_imag]^T as one DGEMM on
//    the checkpoint's own float32 matrices, exactly ref_logmel.c's arithmetic, so the GPU log-mel equals the
//    oracle's to float32 output rounding in every bin. That matters: bins in a band the source never had (above an
//    8 or 16 kHz file's Nyquist) hold only rounding noise at float32 precision, and the ConvNeXt carries that noise
//    into its stages at ~3e-4 of their scale (make_fixtures.py's reference_f32_rel_error for the full model on the
//    8 kHz clip), over the encoder's 1e-4 budget. Cost: 2 n_fft (n_fft + 2) FLOP per frame, 2.1 GFLOP FP64 per 10 s
//    clip (H100 FP64 tensor cores: ~40 us): acceptable for validation, not for throughput.
//  - AC_STFT_FFT (BF16 until 2026-11-28, AC_STFT=fft): window * frame -> cuFFT D2Z, ~0.05 GFLOP per clip. The matrices
//    must be a windowed DFT (torchlibrosa STFT.__init__): ac_stft_window_from_dft recovers the window from row 0 (cos
//    0 = 1: exactly the stored window) and refuses anything else. It differs from the oracle only by the matrices' own
//    float32 rounding (~2^-25 per entry), far inside the BF16 budget.
// These two: power in double, mel = power @ melW as DGEMM (0.23 GFLOP per clip), 10 log10 in double, one rounding to
// float32, then bn0 in float32 as ac_bn0_ref.
//  - AC_STFT_FFT32 (BF16, production since 2026-11-28): the same windowed FFT in float32, as upstream's own float32
//    STFT computes it (torchlibrosa's conv1d): float frames -> cuFFT R2C -> one kernel for power, mel (each mel
//    summed over its filter's band only, ~1,000 MACs per frame instead of nb x n_mels), 10 log10 and bn0. By count,
//    ~17 KB of device traffic per frame where the double path moves ~45 KB (17 vs 45 MB per 10 s clip: ~6 us of
//    an H200's 4.8 TB/s), two kernels and the FFT instead of three kernels, the FFT and a DGEMM. Bins deep below
//    their frame's peak carry float32 rounding noise, as upstream's do (tests/tolerances.h: TOL_LOGMEL_*).
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
// is sent as is, half the bytes). AC_PCM_F32_PACK is float input for the encoder (kernels/gpu_encoder.h), staged
// as int16 when that is lossless (host/gather.h ac_gather_s16_exact), else as float; the front end itself takes
// only the first two.
typedef enum { AC_PCM_F32 = 0, AC_PCM_S16 = 1, AC_PCM_F32_PACK = 2 } ac_pcm_kind;

// window (n_fft) from conv_real/conv_imag (n_fft/2 + 1, n_fft) as stored; AC_ERR_FORMAT if they are not
// window * exp(-2 pi i k n / N) to float32 rounding (1e-6 absolute: entries are <= 1 in magnitude).
ac_status ac_stft_window_from_dft(const float *conv_real, const float *conv_imag, int n_fft, float *window);
// bn0 folded as ac_bn0_ref does: alpha = (float)(weight / sqrt(var + eps)), beta = bias - mean * alpha.
void ac_bn0_fold(const float *weight, const float *bias, const float *mean, const float *var, float eps, int n_mels,
                 float *alpha, float *beta);

typedef enum { AC_STFT_DFT_GEMM = 0, AC_STFT_FFT = 1, AC_STFT_FFT32 = 2 } ac_stft_method;

typedef struct ac_logmel_plan ac_logmel_plan;
typedef struct {
    int n_fft, hop, n_mels;
    float amin;
    ac_stft_method method;
    const float *conv_real, *conv_imag;  // host (n_fft/2 + 1, n_fft) as stored: AC_STFT_DFT_GEMM (kept as double)
    const float *window;           // host (n_fft), from ac_stft_window_from_dft: AC_STFT_FFT, AC_STFT_FFT32
    const float *alpha, *beta;     // host (n_mels), from ac_bn0_fold
    const float *melW;             // host (n_fft/2 + 1, n_mels) as stored (logmel_extractor.melW); kept as double
                                   // (FFT32: float, per mel its band of nonzero weights)
    void *cublas;                  // cublasHandle_t; the plan issues its GEMM on `stream`
    cudaStream_t stream;
    int chunk_rows;  // frames per chunk of the scratch (0: 16384, ~270 MB; the tests cut clips with small ones)
} ac_logmel_params;

ac_status ac_logmel_plan_create(const ac_logmel_params *p, ac_logmel_plan **out);
void ac_logmel_plan_free(ac_logmel_plan *p);
// Device scratch bytes ac_logmel_run needs for R frames (at most a chunk's worth, whatever R).
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
