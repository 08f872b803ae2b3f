// CPU reference: waveform at 32 kHz -> log-mel (T, 224) -> bn0.
// Mirrors torchlibrosa Spectrogram + LogmelFilterBank as the CoNeTTE encoder configures them
// (conette src/conette/nn/encoders/convnext.py:144-180, 290-292; models.md §1.4):
//   reflect-pad n_fft/2 both sides (center=True, pad_mode='reflect');
//   real/imag = conv1d(x, conv_real/conv_imag, stride=hop)  -- here one GEMM per part over framed audio;
//   power = real^2 + imag^2;  mel = power @ melW;  logmel = 10*log10(max(mel, amin)) - 10*log10(max(amin, 1));
//   bn0: (x - running_mean) / sqrt(running_var + eps) * weight + bias per mel bin.
// Layouts: x (n,), frames (chunk, n_fft), spec (chunk, 2*(n_fft/2+1)), logmel (T, n_mels) = upstream (B,1,T,F).
// Arithmetic in double on the float32 parameters (see the comment in ac_logmel_ref).
#include "ref_logmel.h"
#include "status.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define FRAMES_PER_CHUNK 256  // bounds scratch memory (~7 MB) for arbitrarily long inputs

ac_status ac_logmel_ref(const ac_frontend *fe, const float *x, int64_t n, float *logmel, int64_t T) {
    const int nfft = fe->n_fft, nb = nfft / 2 + 1, nm = fe->n_mels, pad = nfft / 2;
    if (n < ac_frontend_min_samples(fe))
        return ac_fail(AC_ERR_AUDIO,
                       "too short: %lld samples at %d Hz; the reference STFT's reflect padding needs "
                       "at least %lld (%.1f ms)",
                       (long long)n, fe->sample_rate, (long long)ac_frontend_min_samples(fe),
                       1000.0 * ac_frontend_min_samples(fe) / fe->sample_rate);
    if (T != ac_frontend_n_frames(fe, n))
        return ac_fail(AC_ERR_INVALID_ARG, "log-mel: T=%lld but %lld samples give %lld frames", (long long)T,
                       (long long)n, (long long)ac_frontend_n_frames(fe, n));
    // The float32 parameters and samples are used exactly, but every sum is carried in double: the reference's
    // float32 DFT sums are themselves off by up to ~0.008 dB in bins 60-90 dB below the frame peak (see
    // tests/tolerances.h), so a second, differently-ordered float32 evaluation would add its own rounding to that
    // and miss the 0.01 dB target; the exact value stays within the reference's own error.
    const size_t w_elems = (size_t)nb * nfft;
    double *w = malloc(sizeof(double) * 2 * w_elems);  // rows: conv_real (nb), then conv_imag (nb)
    double *mel = malloc(sizeof(double) * (size_t)nb * nm);
    double *frames = malloc(sizeof(double) * FRAMES_PER_CHUNK * nfft);
    double *spec = malloc(sizeof(double) * FRAMES_PER_CHUNK * 2 * nb);
    double *pow_ = malloc(sizeof(double) * FRAMES_PER_CHUNK * nb);
    double *out = malloc(sizeof(double) * FRAMES_PER_CHUNK * nm);
    ac_status st = AC_OK;
    if (!w || !mel || !frames || !spec || !pow_ || !out) {
        st = ac_fail(AC_ERR_NOMEM, "log-mel: out of memory for scratch buffers");
        goto done;
    }
    for (size_t i = 0; i < w_elems; i++) {
        w[i] = fe->conv_real[i];
        w[w_elems + i] = fe->conv_imag[i];
    }
    for (size_t i = 0; i < (size_t)nb * nm; i++) mel[i] = fe->melW[i];
    for (int64_t t0 = 0; t0 < T; t0 += FRAMES_PER_CHUNK) {
        int nt = (int)(T - t0 < FRAMES_PER_CHUNK ? T - t0 : FRAMES_PER_CHUNK);
        for (int t = 0; t < nt; t++) {
            int64_t s0 = (t0 + t) * fe->hop - pad;  // first sample of the frame in unpadded coordinates
            double *f = frames + (size_t)t * nfft;
            for (int i = 0; i < nfft; i++) {
                int64_t s = s0 + i;
                if (s < 0) s = -s;  // reflect (edge sample not repeated)
                else if (s >= n) s = 2 * (n - 1) - s;
                f[i] = x[s];
            }
        }
        // spec (nt, 2*nb) = frames (nt, nfft) . w^T: columns [0, nb) real, [nb, 2nb) imaginary
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, 2 * nb, nfft, 1.0, frames, nfft, w, nfft, 0.0, spec,
                    2 * nb);
        for (int t = 0; t < nt; t++)
            for (int k = 0; k < nb; k++) {
                double re = spec[(size_t)t * 2 * nb + k], im = spec[(size_t)t * 2 * nb + nb + k];
                pow_[(size_t)t * nb + k] = re * re + im * im;
            }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nt, nm, nb, 1.0, pow_, nb, mel, nm, 0.0, out, nm);
        const double ref_db = 10.0 * log10(fmax((double)fe->amin, 1.0));
        float *dst = logmel + (size_t)t0 * nm;
        for (int i = 0; i < nt * nm; i++) dst[i] = (float)(10.0 * log10(fmax(out[i], (double)fe->amin)) - ref_db);
    }
done:
    free(w);
    free(mel);
    free(frames);
    free(spec);
    free(pow_);
    free(out);
    return st;
}

ac_status ac_bn0_ref(const ac_frontend *fe, float *logmel, int64_t T) {
    if (!fe->bn0_weight || !fe->bn0_bias || !fe->bn0_running_mean || !fe->bn0_running_var)
        return ac_fail(AC_ERR_INVALID_ARG, "bn0: BatchNorm statistics not set (hint: they come from the model file)");
    const int nm = fe->n_mels;
    // PyTorch's CPU eval batch norm folds into out = x * alpha + beta.
    float *alpha = malloc(sizeof(float) * nm), *beta = malloc(sizeof(float) * nm);
    if (!alpha || !beta) {
        free(alpha);
        free(beta);
        return ac_fail(AC_ERR_NOMEM, "bn0: out of memory");
    }
    for (int m = 0; m < nm; m++) {
        double invstd = 1.0 / sqrt((double)fe->bn0_running_var[m] + (double)fe->bn_eps);
        alpha[m] = (float)(fe->bn0_weight[m] * invstd);
        beta[m] = fe->bn0_bias[m] - fe->bn0_running_mean[m] * alpha[m];
    }
    for (int64_t t = 0; t < T; t++)
        for (int m = 0; m < nm; m++) logmel[t * nm + m] = logmel[t * nm + m] * alpha[m] + beta[m];
    free(alpha);
    free(beta);
    return AC_OK;
}
