// Front end on the device (see logmel.h): reflect-padded windowed frames -> cuFFT R2C -> power -> mel GEMM
// (cuBLAS sgemm, fp32 in every precision: the log compresses ~100 dB, so the deep bins need fp32) -> log10 + bn0.
// Layouts: frames (R, n_fft), spectrum (R, n_fft/2+1) complex, power (R, n_fft/2+1), mel/log-mel (R, n_mels).
// Mirrors host/ref/ref_logmel.c (which mirrors conette convnext.py:144-180, 290-292).
#include "common.cuh"
#include "enc_common.cuh"
#include "logmel.h"

#include <cublas_v2.h>
#include <cufft.h>
#include <math.h>
#include <stdio.h>

#define FFT_CHUNK 2048  // frames per cuFFT call: one plan serves every batch; its work area stays ~10 MB

struct ac_logmel_plan {
    int n_fft, nb, hop, n_mels;
    float amin, ref_db;
    float *window, *alpha, *beta;  // device
    const float *melW;
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
                       "DFT (bin %d, tap %d off by %.3g) (hint: the GPU front end computes the STFT with an FFT; "
                       "run this model on the CPU path)", wk, wi, worst);
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
    cudaFree(p->window);
    cudaFree(p->alpha);
    cudaFree(p->beta);
    free(p);
}

static ac_status plan_init(ac_logmel_plan *p, const ac_logmel_params *a) {
    CUDA_CHECK(cudaMalloc((void **)&p->window, sizeof(float) * a->n_fft));
    CUDA_CHECK(cudaMalloc((void **)&p->alpha, sizeof(float) * a->n_mels));
    CUDA_CHECK(cudaMalloc((void **)&p->beta, sizeof(float) * a->n_mels));
    CUDA_CHECK(cudaMemcpy(p->window, a->window, sizeof(float) * a->n_fft, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p->alpha, a->alpha, sizeof(float) * a->n_mels, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p->beta, a->beta, sizeof(float) * a->n_mels, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize());  // pageable copies may still be in flight; the plan's stream won't wait
    int n = a->n_fft, nb = p->nb;
    CUFFT_CHECK(cufftPlanMany(&p->fft, 1, &n, &n, 1, n, &nb, 1, nb, CUFFT_R2C, FFT_CHUNK));
    p->fft_ok = 1;
    CUFFT_CHECK(cufftSetStream(p->fft, p->stream));
    return AC_OK;
}

extern "C" ac_status ac_logmel_plan_create(const ac_logmel_params *a, ac_logmel_plan **out) {
    *out = NULL;
    if (a->n_fft < 2 || a->hop < 1 || a->n_mels < 1 || !a->window || !a->alpha || !a->beta || !a->melW || !a->cublas)
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel plan: n_fft %d, hop %d, n_mels %d or a NULL table", a->n_fft,
                       a->hop, a->n_mels);
    ac_logmel_plan *p = (ac_logmel_plan *)calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "log-mel plan: out of memory");
    p->n_fft = a->n_fft;
    p->nb = a->n_fft / 2 + 1;
    p->hop = a->hop;
    p->n_mels = a->n_mels;
    p->amin = a->amin;
    p->ref_db = (float)(10.0 * log10(fmax((double)a->amin, 1.0)));  // ref_logmel.c: ref = 1.0
    p->melW = a->melW;
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

static int64_t rows_padded(int64_t R) { return CEIL_DIV(R, (int64_t)FFT_CHUNK) * FFT_CHUNK; }
static size_t al(size_t b) { return (b + 255) & ~(size_t)255; }

extern "C" size_t ac_logmel_workspace(const ac_logmel_plan *p, int64_t R) {
    const int64_t Rp = rows_padded(R);
    return al(sizeof(float) * (size_t)Rp * p->n_fft) + al(sizeof(float2) * (size_t)Rp * p->nb);
}

template <typename T> static __device__ __forceinline__ float pcm_at(const T *x, int64_t i);
template <> __device__ __forceinline__ float pcm_at<float>(const float *x, int64_t i) { return __ldg(x + i); }
template <> __device__ __forceinline__ float pcm_at<int16_t>(const int16_t *x, int64_t i) {
    return (float)__ldg(x + i) * (1.0f / 32768.0f);
}

// One block per frame row (rows >= R are zeroed: they pad the last FFT chunk).
template <typename T>
static __global__ void frames_kernel(const T *__restrict__ pcm, const int64_t *__restrict__ pcm_off,
                                     const int *__restrict__ foff, int n, int64_t R, int n_fft, int hop,
                                     const float *__restrict__ window, float *__restrict__ frames) {
    const int64_t r = blockIdx.x;
    float *dst = frames + r * n_fft;
    if (r >= R) {
        for (int i = threadIdx.x; i < n_fft; i += blockDim.x) dst[i] = 0.f;
        return;
    }
    const int c = ac_clip_of(foff, n, (int)r);
    const int64_t t = r - foff[c], base = pcm_off[c], len = pcm_off[c + 1] - base;
    const int64_t s0 = t * hop - n_fft / 2;
    for (int i = threadIdx.x; i < n_fft; i += blockDim.x) {
        int64_t s = s0 + i;
        if (s < 0) s = -s;  // reflect, edge sample not repeated (len > n_fft/2 guaranteed by the caller)
        else if (s >= len) s = 2 * (len - 1) - s;
        dst[i] = pcm_at<T>(pcm, base + s) * __ldg(window + i);
    }
}

static __global__ void power_kernel(const float2 *__restrict__ spec, int64_t total, float *__restrict__ power) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        float2 v = spec[i];
        power[i] = v.x * v.x + v.y * v.y;
    }
}

static __global__ void log_bn0_kernel(const float *__restrict__ mel, int64_t total, int n_mels, float amin,
                                      float ref_db, const float *__restrict__ alpha, const float *__restrict__ beta,
                                      float *__restrict__ logmel_out, float *__restrict__ out) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int m = (int)(i % n_mels);
        // log10 in double, as the reference carries it: the float mel is exact input, one rounding at the end
        const float l = (float)(10.0 * log10(fmax((double)mel[i], (double)amin)) - (double)ref_db);
        if (logmel_out) logmel_out[i] = l;
        out[i] = l * alpha[m] + beta[m];
    }
}

static int grid_for(int64_t total) {
    int64_t b = CEIL_DIV(total, (int64_t)256);
    return (int)(b < 1 ? 1 : b > 65535 * 16 ? 65535 * 16 : b);
}

extern "C" ac_status ac_logmel_run(ac_logmel_plan *p, ac_pcm_kind kind, const void *pcm, const int64_t *pcm_off,
                                   const int *foff, int n, int64_t R, void *workspace, size_t workspace_bytes,
                                   float *logmel_out, float *bn0_out) {
    if (n < 1 || R < 1 || R > 0x7fffffff || !pcm || !pcm_off || !foff || !bn0_out || (kind != AC_PCM_F32 && kind != AC_PCM_S16))
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel: %d clips, %lld frames, kind %d or a NULL pointer", n,
                       (long long)R, (int)kind);
    if (workspace_bytes < ac_logmel_workspace(p, R))
        return ac_fail(AC_ERR_INTERNAL, "log-mel: workspace %zu bytes < %zu needed", workspace_bytes,
                       ac_logmel_workspace(p, R));
    const int64_t Rp = rows_padded(R);
    float *frames = (float *)workspace;
    float2 *spec = (float2 *)((char *)workspace + al(sizeof(float) * (size_t)Rp * p->n_fft));
    float *power = frames;        // frames are dead once transformed
    float *mel = (float *)spec;   // the spectrum is dead once squared; R * n_mels <= Rp * 2 * nb is checked below
    if ((size_t)R * p->n_mels > (size_t)Rp * 2 * p->nb)
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel: %d mels exceed the spectrum's %d values per frame", p->n_mels,
                       2 * p->nb);
    if (kind == AC_PCM_F32)
        frames_kernel<float><<<(unsigned)Rp, 128, 0, p->stream>>>((const float *)pcm, pcm_off, foff, n, R, p->n_fft,
                                                                  p->hop, p->window, frames);
    else
        frames_kernel<int16_t><<<(unsigned)Rp, 128, 0, p->stream>>>((const int16_t *)pcm, pcm_off, foff, n, R,
                                                                    p->n_fft, p->hop, p->window, frames);
    KERNEL_CHECK();
    for (int64_t r0 = 0; r0 < Rp; r0 += FFT_CHUNK)
        CUFFT_CHECK(cufftExecR2C(p->fft, frames + r0 * p->n_fft, (cufftComplex *)(spec + r0 * p->nb)));
    const int64_t np = R * p->nb;
    power_kernel<<<grid_for(np), 256, 0, p->stream>>>(spec, np, power);
    KERNEL_CHECK();
    // mel (R, n_mels) = power (R, nb) @ melW (nb, n_mels), row-major: column-major mel^T = melW^T . power^T
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSetStream(p->blas, p->stream));
    CUBLAS_CHECK(cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, p->n_mels, (int)R, p->nb, &one, p->melW, p->n_mels,
                             power, p->nb, &zero, mel, p->n_mels));
    const int64_t nm = R * p->n_mels;
    log_bn0_kernel<<<grid_for(nm), 256, 0, p->stream>>>(mel, nm, p->n_mels, p->amin, p->ref_db, p->alpha, p->beta,
                                                        logmel_out, bn0_out);
    KERNEL_CHECK();
    return AC_OK;
}
