// Front end on the device (see logmel.h), in double up to the log as ref_logmel.c: reflect-padded frames -> spectrum
// (DGEMM against the stored DFT matrices, or windowed cuFFT D2Z) -> power -> mel DGEMM -> 10 log10 -> float, then bn0
// in float as ac_bn0_ref; or (AC_STFT_FFT32) in float as upstream's float32 STFT: windowed float frames -> cuFFT R2C ->
// one kernel for power, the mel bands, 10 log10 and bn0. The batch's R frames go through in chunks of rows (every step
// is per frame), so the double-precision scratch is ~270 MB whatever the batch: for 256 10 s clips it was 4.2 GB, more
// than the whole encoder's activations, and it doubled with a second worker on the GPU.
// Layouts, per chunk of Rc rows: frames (Rc, n_fft) double (float: FFT32); spectrum (Rc, 2 nb) planar re | im per
// row (GEMM) or (Rc, nb) complex (FFT: double, FFT32: float), nb = n_fft/2 + 1; power (Rc, nb) double; mel (Rc,
// n_mels) double; log-mel / bn0 (R, n_mels) float.
// Mirrors host/ref/ref_logmel.c (which mirrors conette convnext.py:144-180, 290-292).
#include "common.cuh"
#include "enc_common.cuh"
#include "logmel.h"

#include <cublas_v2.h>
#include <cufft.h>
#include <math.h>
#include <stdio.h>

#define FFT_CHUNK 2048         // frames per cuFFT call: one plan serves every batch; its work area stays ~20 MB
#define LM_CHUNK (8 * FFT_CHUNK)  // frames per chunk of the whole front end: 16384 x 16.4 KB of double scratch
#define MEL32_THREADS 256         // power_mel_log_kernel: a warp per frame row, 8 rows per block
#define MEL32_SMEM_MAX (96 * 1024)  // its power rows: n_fft <= ~6000

struct ac_logmel_plan {
    ac_stft_method method;
    int n_fft, nb, hop, n_mels;
    int chunk;      // rows per chunk (a multiple of fft_batch for the FFT)
    int fft_batch;  // frames per cuFFT call: FFT_CHUNK, or a smaller chunk
    float amin, ref_db;
    double *dft;     // device (2 nb, n_fft): conv_real rows then conv_imag rows (GEMM)
    double *window;  // device (n_fft) (FFT)
    double *melW;    // device (nb, n_mels)
    // FFT32: the window in float, and melW as one band per mel: weights melW[band_lo[m] + j][m] at
    // band_w[band_off[m] + j], j < band_off[m + 1] - band_off[m] (the nonzero run; a triangle filter's support)
    float *window32, *band_w;
    int *band_lo, *band_off;
    float *alpha, *beta;
    cublasHandle_t blas;
    cudaStream_t stream;
    cufftHandle fft;
    int fft_ok;
};

extern "C" ac_status ac_stft_window_from_dft(const float *conv_real, const float *conv_imag, int n_fft,
                                             float *window) {
    const int nb = n_fft / 2 + 1;
    for (int i = 0; i < n_fft; i++) window[i] = conv_real[i];  // k = 0: cos(0) * w = w, exactly
    double worst = 0;
    int wk = 0, wi = 0;
    for (int k = 0; k < nb; k++)
        for (int i = 0; i < n_fft; i++) {
            double ph = 2.0 * M_PI * (double)(((long)k * i) % n_fft) / n_fft;
            double er = fabs((double)conv_real[(size_t)k * n_fft + i] - window[i] * cos(ph));
            double ei = fabs(fabs((double)conv_imag[(size_t)k * n_fft + i]) - fabs(window[i] * sin(ph)));
            double e = er > ei ? er : ei;
            if (e > worst) {
                worst = e;
                wk = k;
                wi = i;
            }
        }
    if (!(worst <= 1e-6))
        return ac_fail(AC_ERR_FORMAT, "front end: spectrogram_extractor.stft.conv_real/conv_imag are not a windowed "
                       "DFT (bin %d, tap %d off by %.3g) (hint: the BF16 front end computes the STFT with an FFT; "
                       "use --precision fp32, whose DFT is a GEMM on the stored matrices)", wk, wi, worst);
    return AC_OK;
}

extern "C" void ac_bn0_fold(const float *weight, const float *bias, const float *mean, const float *var, float eps,
                            int n_mels, float *alpha, float *beta) {
    for (int m = 0; m < n_mels; m++) {  // exactly ac_bn0_ref's fold
        double invstd = 1.0 / sqrt((double)var[m] + (double)eps);
        alpha[m] = (float)(weight[m] * invstd);
        beta[m] = bias[m] - mean[m] * alpha[m];
    }
}

extern "C" void ac_logmel_plan_free(ac_logmel_plan *p) {
    if (!p) return;
    if (p->fft_ok) cufftDestroy(p->fft);
    cudaFree(p->dft);
    cudaFree(p->window);
    cudaFree(p->melW);
    cudaFree(p->window32);
    cudaFree(p->band_w);
    cudaFree(p->band_lo);
    cudaFree(p->band_off);
    cudaFree(p->alpha);
    cudaFree(p->beta);
    free(p);
}

// float host table -> new double device table (synchronous)
static ac_status upload_f64(const float *h, size_t n, double **d) {
    double *t = (double *)malloc(sizeof(double) * (n ? n : 1));
    if (!t) return ac_fail(AC_ERR_NOMEM, "log-mel plan: host out of memory");
    for (size_t i = 0; i < n; i++) t[i] = h[i];
    cudaError_t err = cudaMalloc((void **)d, sizeof(double) * (n ? n : 1));
    if (err == cudaSuccess) err = cudaMemcpy(*d, t, sizeof(double) * n, cudaMemcpyHostToDevice);
    free(t);
    CUDA_CHECK(err);
    return AC_OK;
}

template <typename T> static ac_status upload(const T *h, size_t n, T **d) {
    CUDA_CHECK(cudaMalloc((void **)d, sizeof(T) * (n ? n : 1)));
    CUDA_CHECK(cudaMemcpy(*d, h, sizeof(T) * n, cudaMemcpyHostToDevice));
    return AC_OK;
}

// FFT32's mel bands from melW (nb, n_mels): each mel's run from its first to its last nonzero bin (zeros inside a
// run are kept: any matrix works, a banded one is cheap)
static ac_status bands_init(ac_logmel_plan *p, const float *melW) {
    const int nb = p->nb, nm = p->n_mels;
    int *lo = (int *)malloc(sizeof(int) * nm), *off = (int *)malloc(sizeof(int) * (nm + 1));
    float *w = (float *)malloc(sizeof(float) * (size_t)nb * nm);
    ac_status st = !lo || !off || !w ? ac_fail(AC_ERR_NOMEM, "log-mel plan: host out of memory") : AC_OK;
    if (!st) {
        int tot = 0;
        for (int m = 0; m < nm; m++) {
            int a = 0, b = -1;
            for (int k = 0; k < nb; k++)
                if (melW[(size_t)k * nm + m] != 0.0f) {
                    if (b < 0) a = k;
                    b = k;
                }
            lo[m] = a, off[m] = tot;
            for (int k = a; k <= b; k++) w[tot++] = melW[(size_t)k * nm + m];
        }
        off[nm] = tot;
        if (!(st = upload(lo, (size_t)nm, &p->band_lo)) && !(st = upload(off, (size_t)nm + 1, &p->band_off)))
            st = upload(w, (size_t)tot, &p->band_w);
    }
    free(lo), free(off), free(w);
    return st;
}

static ac_status plan_init(ac_logmel_plan *p, const ac_logmel_params *a) {
    const size_t nd = (size_t)p->nb * a->n_fft;
    ac_status st = p->method == AC_STFT_FFT32 ? bands_init(p, a->melW)
                                              : upload_f64(a->melW, (size_t)p->nb * a->n_mels, &p->melW);
    if (st) return st;
    if (p->method == AC_STFT_FFT32) {
        if ((st = upload(a->window, (size_t)a->n_fft, &p->window32))) return st;
        int n = a->n_fft, nb = p->nb;
        CUFFT_CHECK(cufftPlanMany(&p->fft, 1, &n, &n, 1, n, &nb, 1, nb, CUFFT_R2C, p->fft_batch));
        p->fft_ok = 1;
        CUFFT_CHECK(cufftSetStream(p->fft, p->stream));
    } else if (p->method == AC_STFT_DFT_GEMM) {
        double *t = (double *)malloc(sizeof(double) * 2 * nd);
        if (!t) return ac_fail(AC_ERR_NOMEM, "log-mel plan: host out of memory");
        for (size_t i = 0; i < nd; i++) {
            t[i] = a->conv_real[i];
            t[nd + i] = a->conv_imag[i];
        }
        cudaError_t err = cudaMalloc((void **)&p->dft, sizeof(double) * 2 * nd);
        if (err == cudaSuccess) err = cudaMemcpy(p->dft, t, sizeof(double) * 2 * nd, cudaMemcpyHostToDevice);
        free(t);
        CUDA_CHECK(err);
    } else {
        if ((st = upload_f64(a->window, (size_t)a->n_fft, &p->window))) return st;
        int n = a->n_fft, nb = p->nb;
        CUFFT_CHECK(cufftPlanMany(&p->fft, 1, &n, &n, 1, n, &nb, 1, nb, CUFFT_D2Z, p->fft_batch));
        p->fft_ok = 1;
        CUFFT_CHECK(cufftSetStream(p->fft, p->stream));
    }
    if ((st = upload(a->alpha, (size_t)a->n_mels, &p->alpha)) || (st = upload(a->beta, (size_t)a->n_mels, &p->beta)))
        return st;
    CUDA_CHECK(cudaDeviceSynchronize());  // pageable copies may still be in flight; the plan's stream won't wait
    return AC_OK;
}

extern "C" ac_status ac_logmel_plan_create(const ac_logmel_params *a, ac_logmel_plan **out) {
    *out = NULL;
    const int gemm = a->method == AC_STFT_DFT_GEMM;
    if (a->n_fft < 2 || a->hop < 1 || a->n_mels < 1 || a->n_mels > 2 * (a->n_fft / 2 + 1) || a->chunk_rows < 0 ||
        (a->method != AC_STFT_DFT_GEMM && a->method != AC_STFT_FFT && a->method != AC_STFT_FFT32) ||
        (a->method == AC_STFT_FFT32 &&
         (size_t)(a->n_fft / 2 + 1) * (MEL32_THREADS / 32) * sizeof(float) > MEL32_SMEM_MAX) ||
        (gemm && (!a->conv_real || !a->conv_imag)) ||
        (!gemm && !a->window) || !a->alpha || !a->beta || !a->melW || !a->cublas)
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel plan: n_fft %d, hop %d, n_mels %d (<= n_fft + 2), method %d, "
                       "chunk_rows %d (>= 0) or a NULL table", a->n_fft, a->hop, a->n_mels, (int)a->method,
                       a->chunk_rows);
    ac_logmel_plan *p = (ac_logmel_plan *)calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "log-mel plan: out of memory");
    p->method = a->method;
    p->n_fft = a->n_fft;
    p->nb = a->n_fft / 2 + 1;
    p->hop = a->hop;
    p->n_mels = a->n_mels;
    p->chunk = a->chunk_rows > 0 ? a->chunk_rows : LM_CHUNK;
    p->fft_batch = p->chunk < FFT_CHUNK ? p->chunk : FFT_CHUNK;
    if (p->method != AC_STFT_DFT_GEMM) p->chunk = CEIL_DIV(p->chunk, p->fft_batch) * p->fft_batch;
    p->amin = a->amin;
    p->ref_db = (float)(10.0 * log10(fmax((double)a->amin, 1.0)));  // ref_logmel.c: ref = 1.0
    p->blas = (cublasHandle_t)a->cublas;
    p->stream = a->stream;
    ac_status st = plan_init(p, a);
    if (st) {
        ac_logmel_plan_free(p);
        return st;
    }
    *out = p;
    return AC_OK;
}

// rows of scratch for `rows` frames: FFT, whole cuFFT batches (the last one padded with zero frames); GEMM, exactly
static int64_t rows_padded(const ac_logmel_plan *p, int64_t rows) {
    return p->method != AC_STFT_DFT_GEMM ? CEIL_DIV(rows, (int64_t)p->fft_batch) * p->fft_batch : rows;
}
// rows of the workspace for a batch of R frames: one chunk's, or fewer for a small batch
static int64_t scratch_rows(const ac_logmel_plan *p, int64_t R) { return rows_padded(p, R < p->chunk ? R : p->chunk); }
static size_t al(size_t b) { return (b + 255) & ~(size_t)255; }

extern "C" size_t ac_logmel_workspace(const ac_logmel_plan *p, int64_t R) {
    const int64_t Rw = scratch_rows(p, R);
    const size_t e = p->method == AC_STFT_FFT32 ? sizeof(float) : sizeof(double);
    return al(e * (size_t)Rw * p->n_fft) + al(e * 2 * (size_t)Rw * p->nb);
}

// the sample as the float32 the CPU path sees (int16: x / 32768, exact), widened to double
template <typename T> static __device__ __forceinline__ double pcm_at(const T *x, int64_t i);
template <> __device__ __forceinline__ double pcm_at<float>(const float *x, int64_t i) { return (double)__ldg(x + i); }
template <> __device__ __forceinline__ double pcm_at<int16_t>(const int16_t *x, int64_t i) {
    return (double)((float)__ldg(x + i) * (1.0f / 32768.0f));
}

// One block per frame row of the chunk that starts at batch row r0; rows >= `rows` (FFT batch padding) are
// zeroed. window NULL: raw samples (the DFT matrices carry the window).
// F: the frames' type (double; float for FFT32, where the sample and the window product are rounded to float).
template <typename T, typename F>
static __global__ void frames_kernel(const T *__restrict__ pcm, const int64_t *__restrict__ pcm_off,
                                     const int *__restrict__ foff, int n, int64_t r0, int64_t rows, int n_fft, int hop,
                                     const F *__restrict__ window, F *__restrict__ frames) {
    const int64_t rl = blockIdx.x;
    F *dst = frames + rl * n_fft;
    if (rl >= rows) {
        for (int i = threadIdx.x; i < n_fft; i += blockDim.x) dst[i] = (F)0;
        return;
    }
    const int64_t r = r0 + rl;
    const int c = ac_clip_of(foff, n, (int)r);
    const int64_t t = r - foff[c], base = pcm_off[c], len = pcm_off[c + 1] - base;
    const int64_t s0 = t * hop - n_fft / 2;
    for (int i = threadIdx.x; i < n_fft; i += blockDim.x) {
        int64_t s = s0 + i;
        if (s < 0) s = -s;  // reflect, edge sample not repeated (len > n_fft/2 guaranteed by the caller)
        else if (s >= len) s = 2 * (len - 1) - s;
        const F v = (F)pcm_at<T>(pcm, base + s);  // exact for float: the sample is a float widened
        dst[i] = window ? v * window[i] : v;
    }
}

// power (R, nb) from the spectrum: planar (R, 2 nb) rows re | im (GEMM) or interleaved complex (R, nb) (FFT)
static __global__ void power_kernel(const double *__restrict__ spec, int planar, int64_t R, int nb,
                                    double *__restrict__ power) {
    const int64_t total = R * nb;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / nb;
        const int k = (int)(i % nb);
        double re, im;
        if (planar) {
            re = spec[r * 2 * nb + k];
            im = spec[r * 2 * nb + nb + k];
        } else {
            re = spec[2 * i];
            im = spec[2 * i + 1];
        }
        power[i] = re * re + im * im;
    }
}

static __global__ void log_bn0_kernel(const double *__restrict__ mel, int64_t total, int n_mels, float amin,
                                      float ref_db, const float *__restrict__ alpha, const float *__restrict__ beta,
                                      float *__restrict__ logmel_out, float *__restrict__ out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int m = (int)(i % n_mels);
        const float l = (float)(10.0 * log10(fmax(mel[i], (double)amin)) - (double)ref_db);  // ref_logmel.c's order
        if (logmel_out) logmel_out[i] = l;
        out[i] = l * alpha[m] + beta[m];
    }
}

// FFT32, after cuFFT R2C: one warp per frame row. Power of every bin into shared memory, then each lane sums
// its mels' bands in float, 10 log10 (ref_logmel.c's order: max with amin, minus ref_db) and bn0.
static __global__ void power_mel_log_kernel(const cufftComplex *__restrict__ spec, int64_t rows, int nb, int n_mels,
                                            const int *__restrict__ band_lo, const int *__restrict__ band_off,
                                            const float *__restrict__ band_w, float amin, float ref_db,
                                            const float *__restrict__ alpha, const float *__restrict__ beta,
                                            float *__restrict__ logmel_out, float *__restrict__ out) {
    extern __shared__ float pw[];  // (warps, nb)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + warp;
    if (r >= rows) return;  // the whole warp; no block barrier follows
    float *p = pw + warp * nb;
    const cufftComplex *s = spec + r * nb;
    for (int k = lane; k < nb; k += 32) {
        const cufftComplex v = s[k];
        p[k] = fmaf(v.x, v.x, v.y * v.y);
    }
    __syncwarp();
    for (int m = lane; m < n_mels; m += 32) {
        const int j0 = __ldg(band_off + m), j1 = __ldg(band_off + m + 1);
        const float *pk = p + __ldg(band_lo + m) - j0;
        float acc = 0.0f;
        for (int j = j0; j < j1; j++) acc = fmaf(pk[j], __ldg(band_w + j), acc);
        const float l = 10.0f * log10f(fmaxf(acc, amin)) - ref_db;
        if (logmel_out) logmel_out[r * n_mels + m] = l;
        out[r * n_mels + m] = l * __ldg(alpha + m) + __ldg(beta + m);
    }
}

static unsigned grid_for(int64_t total) {
    int64_t b = CEIL_DIV(total, (int64_t)256);
    return (unsigned)(b < 1 ? 1 : b > 1048576 ? 1048576 : b);
}

static ac_status run_fft32(ac_logmel_plan *p, ac_pcm_kind kind, const void *pcm, const int64_t *pcm_off,
                           const int *foff, int n, int64_t R, void *workspace, float *logmel_out, float *bn0_out) {
    const int nb = p->nb, fw = MEL32_THREADS / 32;
    float *frames = (float *)workspace;
    const size_t frames_bytes = al(sizeof(float) * (size_t)scratch_rows(p, R) * p->n_fft);
    cufftComplex *spec = (cufftComplex *)((char *)workspace + frames_bytes);
    const size_t smem = sizeof(float) * fw * nb;
    CUDA_CHECK(ac_smem_optin(power_mel_log_kernel, (int)smem));
    for (int64_t r0 = 0; r0 < R; r0 += p->chunk) {
        const int64_t rows = R - r0 < p->chunk ? R - r0 : p->chunk, Rp = rows_padded(p, rows);
        if (kind == AC_PCM_F32)
            frames_kernel<float, float><<<(unsigned)Rp, 128, 0, p->stream>>>((const float *)pcm, pcm_off, foff, n, r0,
                                                                             rows, p->n_fft, p->hop, p->window32,
                                                                             frames);
        else
            frames_kernel<int16_t, float><<<(unsigned)Rp, 128, 0, p->stream>>>((const int16_t *)pcm, pcm_off, foff, n,
                                                                               r0, rows, p->n_fft, p->hop, p->window32,
                                                                               frames);
        KERNEL_CHECK();
        for (int64_t f0 = 0; f0 < Rp; f0 += p->fft_batch)
            CUFFT_CHECK(cufftExecR2C(p->fft, frames + f0 * p->n_fft, spec + f0 * nb));
        power_mel_log_kernel<<<(unsigned)CEIL_DIV(rows, (int64_t)fw), MEL32_THREADS, smem, p->stream>>>(
            spec, rows, nb, p->n_mels, p->band_lo, p->band_off, p->band_w, p->amin, p->ref_db, p->alpha, p->beta,
            logmel_out ? logmel_out + r0 * p->n_mels : NULL, bn0_out + r0 * p->n_mels);
        KERNEL_CHECK();
    }
    return AC_OK;
}

extern "C" ac_status ac_logmel_run(ac_logmel_plan *p, ac_pcm_kind kind, const void *pcm, const int64_t *pcm_off,
                                   const int *foff, int n, int64_t R, void *workspace, size_t workspace_bytes,
                                   float *logmel_out, float *bn0_out) {
    if (n < 1 || R < 1 || R > 0x7fffffff || !pcm || !pcm_off || !foff || !bn0_out ||
        (kind != AC_PCM_F32 && kind != AC_PCM_S16))
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel: %d clips, %lld frames, kind %d or a NULL pointer", n,
                       (long long)R, (int)kind);
    if (!workspace || workspace_bytes < ac_logmel_workspace(p, R))
        return ac_fail(AC_ERR_INTERNAL, "log-mel: workspace %zu bytes < %zu needed", workspace_bytes,
                       ac_logmel_workspace(p, R));
    if (p->method == AC_STFT_FFT32) return run_fft32(p, kind, pcm, pcm_off, foff, n, R, workspace, logmel_out, bn0_out);
    const int nb = p->nb;
    const int64_t Rw = scratch_rows(p, R);
    double *frames = (double *)workspace;
    double *spec = (double *)((char *)workspace + al(sizeof(double) * (size_t)Rw * p->n_fft));
    double *power = frames;  // frames are dead once transformed (rows nb <= Rw n_fft)
    double *mel = spec;      // the spectrum is dead once squared (rows n_mels <= Rw 2 nb, checked at plan creation)
    const double *win = p->method == AC_STFT_FFT ? p->window : NULL;
    const double one = 1.0, zero = 0.0;
    CUBLAS_CHECK(cublasSetStream(p->blas, p->stream));
    for (int64_t r0 = 0; r0 < R; r0 += p->chunk) {
        const int64_t rows = R - r0 < p->chunk ? R - r0 : p->chunk, Rp = rows_padded(p, rows);
        if (kind == AC_PCM_F32)
            frames_kernel<float, double><<<(unsigned)Rp, 128, 0, p->stream>>>((const float *)pcm, pcm_off, foff, n, r0, rows,
                                                                      p->n_fft, p->hop, win, frames);
        else
            frames_kernel<int16_t, double><<<(unsigned)Rp, 128, 0, p->stream>>>((const int16_t *)pcm, pcm_off, foff, n, r0,
                                                                        rows, p->n_fft, p->hop, win, frames);
        KERNEL_CHECK();
        if (p->method == AC_STFT_FFT) {
            for (int64_t f0 = 0; f0 < Rp; f0 += p->fft_batch)
                CUFFT_CHECK(cufftExecD2Z(p->fft, frames + f0 * p->n_fft, (cufftDoubleComplex *)(spec + 2 * f0 * nb)));
        } else {
            // spec (rows, 2 nb) = frames (rows, n_fft) . dft (2 nb, n_fft)^T; column-major: spec^T = dft^T(T) . frames^T
            CUBLAS_CHECK(cublasDgemm(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, 2 * nb, (int)rows, p->n_fft, &one, p->dft,
                                     p->n_fft, frames, p->n_fft, &zero, spec, 2 * nb));
        }
        power_kernel<<<grid_for(rows * nb), 256, 0, p->stream>>>(spec, p->method == AC_STFT_DFT_GEMM, rows, nb, power);
        KERNEL_CHECK();
        // mel (rows, n_mels) = power (rows, nb) @ melW (nb, n_mels), row-major: column-major mel^T = melW^T . power^T
        CUBLAS_CHECK(cublasDgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, p->n_mels, (int)rows, nb, &one, p->melW, p->n_mels,
                                 power, nb, &zero, mel, p->n_mels));
        const int64_t nm = rows * p->n_mels;
        log_bn0_kernel<<<grid_for(nm), 256, 0, p->stream>>>(mel, nm, p->n_mels, p->amin, p->ref_db, p->alpha, p->beta,
                                                            logmel_out ? logmel_out + r0 * p->n_mels : NULL,
                                                            bn0_out + r0 * p->n_mels);
        KERNEL_CHECK();
    }
    return AC_OK;
}
