// CoNeTTE front-end constants, built the way the upstream builds them, for use until a model file supplies
// the checkpoint's own copies (which then take precedence):
//   conv_real/conv_imag: torchlibrosa STFT.__init__ -- DFT matrix times the periodic Hann window
//     (librosa.filters.get_window('hann', 1024, fftbins=True)), computed in float64, stored as float32.
//   melW: librosa.filters.mel(sr=32000, n_fft=1024, n_mels=224, fmin=50, fmax=14000) (Slaney mel scale and
//     Slaney area normalisation), float32; transposed to (513, 224) as torchlibrosa stores it.
// Upstream: conette src/conette/nn/encoders/convnext.py:144-180; models.md §1.4.
#include "ac.h"
#include "status.h"
#include "ref/ref_logmel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// librosa.core.convert.hz_to_mel / mel_to_hz with htk=False (Slaney).
static double hz_to_mel(double f) {
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}

static double mel_to_hz(double m) {
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
}

// melW (n_bins, n_mels), following librosa.filters.mel: triangles built in float64 and stored in a float32
// array, then multiplied in place by the float64 Slaney norm (so rounded to float32 twice, as numpy does).
static void slaney_mel(int sr, int n_fft, int n_mels, double f_lo, double f_hi, float *melW) {
    int n_bins = n_fft / 2 + 1;
    double *mel_f = malloc(sizeof(double) * (n_mels + 2));
    double min_mel = hz_to_mel(f_lo), max_mel = hz_to_mel(f_hi);
    double step = (max_mel - min_mel) / (n_mels + 1);  // np.linspace
    for (int i = 0; i < n_mels + 2; i++) mel_f[i] = mel_to_hz(i == n_mels + 1 ? max_mel : min_mel + i * step);
    double fft_step = 1.0 / ((double)n_fft * (1.0 / sr));  // np.fft.rfftfreq
    for (int i = 0; i < n_mels; i++) {
        double fdiff_lo = mel_f[i + 1] - mel_f[i], fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
        double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < n_bins; k++) {
            double fk = k * fft_step;
            double lower = -(mel_f[i] - fk) / fdiff_lo;
            double upper = (mel_f[i + 2] - fk) / fdiff_hi;
            double tri = fmax(0.0, fmin(lower, upper));
            melW[(size_t)k * n_mels + i] = (float)((double)(float)tri * enorm);
        }
    }
    free(mel_f);
}

void ac_frontend_free(ac_frontend *fe) {
    if (!fe) return;
    if (fe->owns_buffers) {
        free(fe->conv_real);
        free(fe->conv_imag);
        free(fe->melW);
    }
    ac_stft_plan_free(fe->stft_plan);
    memset(fe, 0, sizeof *fe);
}

ac_status ac_frontend_init_default(ac_frontend *fe) {
    memset(fe, 0, sizeof *fe);
    fe->sample_rate = 32000;
    fe->n_fft = 1024;
    fe->hop = 320;
    fe->n_mels = 224;
    fe->fmin = 50.0f;
    fe->fmax = 14000.0f;
    fe->amin = 1e-10f;
    fe->bn_eps = 1e-5f;
    const int n = fe->n_fft, nb = n / 2 + 1;
    fe->conv_real = malloc(sizeof(float) * nb * n);
    fe->conv_imag = malloc(sizeof(float) * nb * n);
    fe->melW = malloc(sizeof(float) * nb * fe->n_mels);
    fe->owns_buffers = 1;
    if (!fe->conv_real || !fe->conv_imag || !fe->melW) {
        ac_frontend_free(fe);
        return ac_fail(AC_ERR_NOMEM, "front end: out of memory for the STFT and mel matrices");
    }
    for (int k = 0; k < nb; k++) {
        for (int i = 0; i < n; i++) {
            // scipy general_cosine with sym=False: 0.5 - 0.5*cos(2 pi i / n)
            double w = 0.5 - 0.5 * cos(2.0 * M_PI * i / n);
            // exp(-2 pi i k n / N): reduce k*i mod N first so the phase is exact
            double ph = -2.0 * M_PI * (double)(((long)k * i) % n) / n;
            fe->conv_real[(size_t)k * n + i] = (float)(cos(ph) * w);
            fe->conv_imag[(size_t)k * n + i] = (float)(sin(ph) * w);
        }
    }
    slaney_mel(fe->sample_rate, n, fe->n_mels, fe->fmin, fe->fmax, fe->melW);
    return AC_OK;
}

int64_t ac_frontend_min_samples(const ac_frontend *fe) { return fe->n_fft / 2 + 1; }

int64_t ac_frontend_n_frames(const ac_frontend *fe, int64_t n_samples) { return n_samples / fe->hop + 1; }
