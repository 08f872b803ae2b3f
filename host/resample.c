// Sample-rate conversion: a port of torchaudio.functional.resample with its defaults
// (pytorch/audio src/torchaudio/functional/functional.py: _get_sinc_resample_kernel,
// _apply_sinc_resample_kernel; models.md §1.3, ecosystem.md §6.3).
//
// torchaudio builds, for each of the `new` output phases j (rates reduced by their gcd), a kernel over
// padded input taps m = 0 .. 2*width+orig-1:
//   t = clamp(((-j)/new + (m - width)/orig) * base, -6, 6),  base = min(orig, new) * 0.99
//   k = sinc(pi t) * cos(pi t / 12)^2 * base / orig
// in float32 (the waveform's dtype) with exactly this order of operations, and applies it as a conv1d with
// stride orig over the input zero-padded by (width, width + orig). Output j + new*b reads taps starting at
// input sample b*orig - width. We evaluate the same float32 expressions, but store per phase only the taps
// where |t| < 6: outside, t is clamped to ±6 and the tap is ~1e-23 (sin(6 pi) and cos(pi/2) in float32 are
// not exactly 0), i.e. 400 dB below the signal, so dropping them cannot be measured at float32 precision.
#include "ac.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ac_resampler {
    int orig, new_;   // gcd-reduced rates
    int width;
    int *first;       // (new,) first padded-input tap index with a kept coefficient
    int *count;       // (new,) number of kept taps
    float *taps;      // (new, max_count)
    int max_count;
};

static int gcd_int(int a, int b) {
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void ac_resampler_free(ac_resampler *r) {
    if (!r) return;
    free(r->first);
    free(r->count);
    free(r->taps);
    free(r);
}

ac_status ac_resampler_create(int orig_freq, int new_freq, ac_resampler **out) {
    *out = NULL;
    if (orig_freq <= 0 || new_freq <= 0)
        return ac_fail(AC_ERR_INVALID_ARG, "resampler: rates must be positive (got %d -> %d)", orig_freq, new_freq);
    const int lowpass_filter_width = 6;
    const double rolloff = 0.99;
    int g = gcd_int(orig_freq, new_freq);
    int orig = orig_freq / g, nw = new_freq / g;
    double base_freq = (orig < nw ? orig : nw) * rolloff;  // Python float
    int width = (int)ceil(lowpass_filter_width * (double)orig / base_freq);
    int n_taps = 2 * width + orig;

    ac_resampler *r = calloc(1, sizeof *r);
    if (!r) return ac_fail(AC_ERR_NOMEM, "resampler: out of memory");
    r->orig = orig;
    r->new_ = nw;
    r->width = width;
    r->first = malloc(sizeof(int) * nw);
    r->count = malloc(sizeof(int) * nw);
    // |t| < 6 spans at most 12*orig/base + 1 consecutive taps.
    r->max_count = (int)ceil(2.0 * lowpass_filter_width * orig / base_freq) + 2;
    if (r->max_count > n_taps) r->max_count = n_taps;
    r->taps = calloc((size_t)nw * r->max_count, sizeof(float));
    if (!r->first || !r->count || !r->taps) {
        ac_resampler_free(r);
        return ac_fail(AC_ERR_NOMEM, "resampler %d->%d: out of memory for %d phases", orig_freq, new_freq, nw);
    }

    // Scalars that torch multiplies a float32 tensor by are first rounded to float32.
    const float f_base = (float)base_freq;
    const float f_pi = (float)M_PI;
    const float f_lw = (float)lowpass_filter_width;
    const float f_scale = (float)(base_freq / orig);
    for (int j = 0; j < nw; j++) {
        float tj = (float)(-j) / (float)nw;
        // Taps with |t| < 6 lie around m - width = j*orig/new; scan a window a little wider than needed.
        double center = (double)j * orig / nw + width;
        int lo = (int)floor(center - lowpass_filter_width * (double)orig / base_freq) - 2;
        int hi = (int)ceil(center + lowpass_filter_width * (double)orig / base_freq) + 2;
        if (lo < 0) lo = 0;
        if (hi > n_taps - 1) hi = n_taps - 1;
        int first = -1, cnt = 0;
        for (int m = lo; m <= hi; m++) {
            float idx = (float)(m - width) / (float)orig;
            float t = (tj + idx) * f_base;
            if (!(t > -f_lw && t < f_lw)) continue;  // clamped: negligible tap (see top comment)
            float w = cosf(t * f_pi / f_lw / 2.0f);
            w = w * w;
            float tp = t * f_pi;
            float k = (tp == 0.0f) ? 1.0f : sinf(tp) / tp;
            k *= w * f_scale;
            if (first < 0) first = m;
            if (m - first >= r->max_count) {
                int max_count = r->max_count;
                ac_resampler_free(r);
                return ac_fail(AC_ERR_INTERNAL, "resampler %d->%d: phase %d needs more than %d taps", orig_freq,
                               new_freq, j, max_count);
            }
            r->taps[(size_t)j * r->max_count + (m - first)] = k;
            cnt = m - first + 1;
        }
        r->first[j] = first < 0 ? 0 : first;
        r->count[j] = cnt;
    }
    *out = r;
    return AC_OK;
}

int64_t ac_resampler_out_len(const ac_resampler *r, int64_t in_len) {
    // torchaudio: target_length = ceil(torch.as_tensor(new * length / orig)) -- a Python float turned into a
    // float32 tensor (the default dtype) before ceil; then the conv output is sliced to it.
    double ratio = (double)r->new_ * (double)in_len / (double)r->orig;
    int64_t target = (int64_t)ceilf((float)ratio);
    int64_t conv_len = (in_len / r->orig + 1) * (int64_t)r->new_;  // conv1d output blocks * phases
    return target < conv_len ? target : conv_len;
}

void ac_resampler_window(const ac_resampler *r, int64_t o, int64_t *lo, int64_t *hi) {
    const int64_t b = o / r->new_;
    const int j = (int)(o % r->new_);
    *lo = b * r->orig + r->first[j] - r->width;  // padded index p maps to input sample p - width
    *hi = *lo + r->count[j];
}

int64_t ac_resampler_first_needed(const ac_resampler *r, int64_t o) {
    return (o / r->new_) * r->orig - r->width;  // first[j] >= 0 for every phase
}

void ac_resampler_run_range(const ac_resampler *r, const float *x, int64_t x0, int64_t in_len, int64_t o0,
                            int64_t o1, float *y) {
#pragma omp parallel for schedule(static) if (o1 - o0 > 65536)
    for (int64_t o = o0; o < o1; o++) {
        const int64_t b = o / r->new_;
        const int j = (int)(o % r->new_);
        const float *k = r->taps + (size_t)j * r->max_count;
        const int64_t start = b * r->orig + r->first[j] - r->width;
        const int cnt = r->count[j];
        float acc = 0.0f;
        if (start >= 0 && start + cnt <= in_len) {
            const float *xs = x + (start - x0);
            for (int i = 0; i < cnt; i++) acc += k[i] * xs[i];
        } else {
            for (int i = 0; i < cnt; i++) {
                const int64_t s = start + i;
                if (s >= 0 && s < in_len) acc += k[i] * x[s - x0];
            }
        }
        y[o - o0] = acc;
    }
}

void ac_resampler_run(const ac_resampler *r, const float *x, int64_t in_len, float *y) {
    ac_resampler_run_range(r, x, 0, in_len, 0, ac_resampler_out_len(r, in_len), y);
}

ac_status ac_audio_to_model_rate(const ac_audio *a, int target_rate, float **out, int64_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (!a || !a->data || a->n_frames <= 0 || a->channels <= 0)
        return ac_fail(AC_ERR_INVALID_ARG, "ac_audio_to_model_rate: empty audio");
    ac_resampler *r = NULL;
    int64_t n = a->n_frames;
    if (a->sample_rate != target_rate) {
        ac_status st = ac_resampler_create(a->sample_rate, target_rate, &r);
        if (st) return st;
        n = ac_resampler_out_len(r, a->n_frames);
    }
    // mono input is copied over y whole; channels are summed into it
    float *y = a->channels > 1 ? calloc((size_t)n, sizeof(float)) : malloc((size_t)n * sizeof(float));
    float *tmp = (r && a->channels > 1) ? malloc((size_t)n * sizeof(float)) : NULL;
    if (!y || (r && a->channels > 1 && !tmp)) {
        free(y);
        free(tmp);
        ac_resampler_free(r);
        return ac_fail(AC_ERR_NOMEM, "resample: cannot allocate %lld samples", (long long)n);
    }
    // torch: x.mean(dim=0) over (C, N) = sum in channel order, then divide by C (float32).
    for (int c = 0; c < a->channels; c++) {
        const float *xc = a->data + (size_t)c * a->n_frames;
        if (r) {
            float *dst = a->channels > 1 ? tmp : y;
            ac_resampler_run(r, xc, a->n_frames, dst);
            if (a->channels > 1)
                for (int64_t i = 0; i < n; i++) y[i] += dst[i];
        } else if (a->channels > 1) {
            for (int64_t i = 0; i < n; i++) y[i] += xc[i];
        } else {
            memcpy(y, xc, (size_t)n * sizeof(float));
        }
    }
    if (a->channels > 1) {
        const float fc = (float)a->channels;
        for (int64_t i = 0; i < n; i++) y[i] /= fc;
    }
    free(tmp);
    ac_resampler_free(r);
    *out = y;
    *out_len = n;
    return AC_OK;
}

ac_status ac_audio_to_model_rate_move(ac_audio *a, int target_rate, float **out, int64_t *out_len) {
    if (a && a->data && a->n_frames > 0 && a->channels == 1 && a->sample_rate == target_rate) {
        *out = a->data;  // nothing to resample or average: no copy
        *out_len = a->n_frames;
        a->data = NULL;
        return AC_OK;
    }
    return ac_audio_to_model_rate(a, target_rate, out, out_len);
}
