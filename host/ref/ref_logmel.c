// CPU reference: waveform at 32 kHz -> log-mel (T, 224) -> bn0.
// Mirrors torchlibrosa Spectrogram + LogmelFilterBank as the CoNeTTE encoder configures them
// (conette src/conette/nn/encoders/convnext.py:144-180, 290-292; models.md §1.4):
//   reflect-pad n_fft/2 both sides (center=True, pad_mode='reflect');
//   real/imag = conv1d(x, conv_real/conv_imag, stride=hop)  -- here one GEMM per part over framed audio, each
//               frame folded on the matrices' symmetry (see ac_stft_plan);
//   power = real^2 + imag^2;  mel = power @ melW;  logmel = 10*log10(max(mel, amin)) - 10*log10(max(amin, 1));
//   bn0: (x - running_mean) / sqrt(running_var + eps) * weight + bias per mel bin.
// Layouts: x (n,), frames (chunk, n_fft), folded frames (chunk, n_fft/2+1), re/im (chunk, n_fft/2+1),
// logmel (T, n_mels) = upstream (B,1,T,F).
// Arithmetic in double on the float32 parameters (see the comment in ac_logmel_ref).
#include "ref_logmel.h"
#include "status.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define FRAMES_PER_CHUNK 256  // bounds scratch memory (~7 MB) for arbitrarily long inputs

// The windowed DFT matrices are symmetric in the sample index: conv_real[k][N-i] = conv_real[k][i] and
// conv_imag[k][N-i] = -conv_imag[k][i] in exact arithmetic. So each frame is folded into sums and differences of
// its two halves and multiplied by half of each matrix (half the multiply-adds), and since the float32 matrices
// keep the symmetry only up to rounding (~1 % of entries differ by an ulp in the published checkpoints), each
// entry where it fails adds its exact difference times the sample back:
//   c_i f_i + c_{N-i} f_{N-i} = c_i (f_i + f_{N-i}) + (c_{N-i} - c_i) f_{N-i}
//   s_i f_i + s_{N-i} f_{N-i} = s_i (f_i - f_{N-i}) + (s_{N-i} + s_i) f_{N-i}
// In double both sides are the same sum of the same float32 products, so the result is the full DGEMM's up to
// double rounding. The mel projection skips each band's leading and trailing zero rows (exactly 0 * power).
struct ac_stft_plan {       // nb = nfft/2 + 1 bins, nh = nfft/2 + 1 folded columns, nm mel bands (the front end's)
    double *cr, *ci;         // (nb, nh): conv_real / conv_imag columns 0..nfft/2
    int n_fix;               // corrections, real part first then imaginary
    int *fix_k, *fix_i;      // bin k, sample i of the second half (f_i)
    double *fix_d;           // exact difference to add times f_i
    int n_fix_re;
    int *mel_lo, *mel_hi;    // nonzero rows [lo, hi) of each mel band
    double *melT;            // (nm, nb)
};

void ac_stft_plan_free(ac_stft_plan *p) {
    if (!p) return;
    free(p->cr), free(p->ci), free(p->fix_k), free(p->fix_i), free(p->fix_d), free(p->mel_lo), free(p->mel_hi);
    free(p->melT);
    free(p);
}

ac_status ac_stft_plan_create(const ac_frontend *fe, ac_stft_plan **out) {
    *out = NULL;
    const int N = fe->n_fft, nb = N / 2 + 1, nh = N / 2 + 1, nm = fe->n_mels;
    if (N < 2 || N % 2) return ac_fail(AC_ERR_INVALID_ARG, "log-mel: n_fft %d must be even", N);
    ac_stft_plan *p = calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "log-mel: out of memory");
    p->cr = malloc(sizeof(double) * nb * nh);
    p->ci = malloc(sizeof(double) * nb * nh);
    p->mel_lo = malloc(sizeof(int) * nm);
    p->mel_hi = malloc(sizeof(int) * nm);
    p->melT = malloc(sizeof(double) * nm * nb);
    int cap = 0;
    for (int pass = 0; pass < 2; pass++) {  // count, then fill
        int n = 0, n_re = 0;
        for (int part = 0; part < 2; part++)
            for (int k = 0; k < nb; k++)
                for (int i = 1; i < N / 2; i++) {
                    const float *m = part ? fe->conv_imag : fe->conv_real;
                    const float a = m[(size_t)k * N + i], b = m[(size_t)k * N + N - i];
                    if (part ? b == -a : b == a) continue;
                    if (pass) {
                        p->fix_k[n] = k, p->fix_i[n] = N - i;
                        p->fix_d[n] = part ? (double)b + (double)a : (double)b - (double)a;
                    }
                    n++;
                    if (!part) n_re++;
                }
        if (!pass) {
            cap = n > 0 ? n : 1;
            p->fix_k = malloc(sizeof(int) * cap), p->fix_i = malloc(sizeof(int) * cap);
            p->fix_d = malloc(sizeof(double) * cap);
            if (!p->fix_k || !p->fix_i || !p->fix_d) break;
        }
        p->n_fix = n, p->n_fix_re = n_re;
    }
    if (!p->cr || !p->ci || !p->mel_lo || !p->mel_hi || !p->melT || !p->fix_k || !p->fix_i || !p->fix_d) {
        ac_stft_plan_free(p);
        return ac_fail(AC_ERR_NOMEM, "log-mel: out of memory for the STFT plan");
    }
    for (int k = 0; k < nb; k++)
        for (int i = 0; i < nh; i++) {
            p->cr[(size_t)k * nh + i] = fe->conv_real[(size_t)k * N + i];
            p->ci[(size_t)k * nh + i] = fe->conv_imag[(size_t)k * N + i];
        }
    for (int m = 0; m < nm; m++) {
        int lo = nb, hi = 0;
        for (int k = 0; k < nb; k++) {
            p->melT[(size_t)m * nb + k] = fe->melW[(size_t)k * nm + m];
            if (fe->melW[(size_t)k * nm + m] != 0.0f) {
                if (k < lo) lo = k;
                hi = k + 1;
            }
        }
        p->mel_lo[m] = lo < hi ? lo : 0, p->mel_hi[m] = hi;
    }
    *out = p;
    return AC_OK;
}

ac_status ac_logmel_ref(const ac_frontend *fe, const float *x, int64_t n, float *logmel, int64_t T) {
    const int nfft = fe->n_fft, nb = nfft / 2 + 1, nm = fe->n_mels, pad = nfft / 2, nh = nfft / 2 + 1;
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
    ac_stft_plan *own = NULL;
    const ac_stft_plan *p = fe->stft_plan;
    ac_status st = AC_OK;
    if (!p) {  // a front end without a prepared plan (tests): one for this call
        if ((st = ac_stft_plan_create(fe, &own))) return st;
        p = own;
    }
    double *frames = malloc(sizeof(double) * FRAMES_PER_CHUNK * nfft);
    double *ev = malloc(sizeof(double) * FRAMES_PER_CHUNK * nh), *od = malloc(sizeof(double) * FRAMES_PER_CHUNK * nh);
    double *re = malloc(sizeof(double) * FRAMES_PER_CHUNK * nb), *im = malloc(sizeof(double) * FRAMES_PER_CHUNK * nb);
    double *pow_ = malloc(sizeof(double) * FRAMES_PER_CHUNK * nb);
    if (!frames || !ev || !od || !re || !im || !pow_) {
        st = ac_fail(AC_ERR_NOMEM, "log-mel: out of memory for scratch buffers");
        goto done;
    }
    const double ref_db = 10.0 * log10(fmax((double)fe->amin, 1.0));
    for (int64_t t0 = 0; t0 < T; t0 += FRAMES_PER_CHUNK) {
        int nt = (int)(T - t0 < FRAMES_PER_CHUNK ? T - t0 : FRAMES_PER_CHUNK);
#pragma omp parallel for schedule(static)
        for (int t = 0; t < nt; t++) {
            int64_t s0 = (t0 + t) * fe->hop - pad;  // first sample of the frame in unpadded coordinates
            double *f = frames + (size_t)t * nfft, *e = ev + (size_t)t * nh, *o = od + (size_t)t * nh;
            for (int i = 0; i < nfft; i++) {
                int64_t s = s0 + i;
                if (s < 0) s = -s;  // reflect (edge sample not repeated)
                else if (s >= n) s = 2 * (n - 1) - s;
                f[i] = x[s];
            }
            e[0] = o[0] = f[0];
            e[nfft / 2] = o[nfft / 2] = f[nfft / 2];
            for (int i = 1; i < nfft / 2; i++) e[i] = f[i] + f[nfft - i], o[i] = f[i] - f[nfft - i];
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, nb, nh, 1.0, ev, nh, p->cr, nh, 0.0, re, nb);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, nb, nh, 1.0, od, nh, p->ci, nh, 0.0, im, nb);
        float *dst = logmel + (size_t)t0 * nm;
#pragma omp parallel for schedule(static)
        for (int t = 0; t < nt; t++) {
            double *rt = re + (size_t)t * nb, *it = im + (size_t)t * nb, *pw = pow_ + (size_t)t * nb;
            const double *ft = frames + (size_t)t * nfft;
            for (int j = 0; j < p->n_fix; j++) (j < p->n_fix_re ? rt : it)[p->fix_k[j]] += p->fix_d[j] * ft[p->fix_i[j]];
            for (int k = 0; k < nb; k++) pw[k] = rt[k] * rt[k] + it[k] * it[k];
            for (int m = 0; m < nm; m++) {
                const double *mw = p->melT + (size_t)m * nb;
                double acc = 0;
                for (int k = p->mel_lo[m]; k < p->mel_hi[m]; k++) acc += pw[k] * mw[k];
                dst[(size_t)t * nm + m] = (float)(10.0 * log10(fmax(acc, (double)fe->amin)) - ref_db);
            }
        }
    }
done:
    ac_stft_plan_free(own);
    free(frames);
    free(ev);
    free(od);
    free(re);
    free(im);
    free(pow_);
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
