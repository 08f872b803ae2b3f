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
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

struct ac_resampler {
    int orig, new_;   // gcd-reduced rates
    int width;
    int *first;       // (new,) first padded-input tap index with a kept coefficient
    int *count;       // (new,) number of kept taps
    float *taps;      // (new, max_count)
    int max_count;
    int first_min;    // min over phases of first
    int end_max;      // max over phases of first + count: no output of block b reads past b * orig - width + end_max
    int simd;         // the AVX2 path: this CPU has it, AC_RESAMPLE_SIMD=0 is not set (a check, not a tuning), small tile
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
#ifdef HAVE_AVX2_PATH
    const char *simd = getenv("AC_RESAMPLE_SIMD");
    r->simd = __builtin_cpu_supports("avx2") && !(simd && !strcmp(simd, "0"));
#endif
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
        if (r->first[j] + cnt > r->end_max) r->end_max = r->first[j] + cnt;
        if (j == 0 || r->first[j] < r->first_min) r->first_min = r->first[j];
    }
    // the AVX2 path's tile, (Q + new) x 8 floats, is kept under 256 KB: every common rate's is (44.1 kHz: 460 +
    // 320 rows); a rate pair of large coprime numbers (44101 -> 32000) takes the scalar loop
    if (r->simd && r->end_max - r->first_min + nw > 8192) r->simd = 0;
    *out = r;
    return AC_OK;
}

// A process-wide table of resamplers by rate pair (they are read-only once built): building one computes
// new x ~20 taps with sinf/cosf, 7 % of decoding a 10 s 44.1 kHz file when every file built its own.
#define SHARED_MAX 32
static struct {
    int orig, new_;
    ac_resampler *r;
} g_shared[SHARED_MAX];
static int g_n_shared;
static pthread_mutex_t g_shared_mu = PTHREAD_MUTEX_INITIALIZER;

const ac_resampler *ac_resampler_shared(int orig_freq, int new_freq) {
    const ac_resampler *found = NULL;
    pthread_mutex_lock(&g_shared_mu);
    for (int i = 0; i < g_n_shared && !found; i++)
        if (g_shared[i].orig == orig_freq && g_shared[i].new_ == new_freq) found = g_shared[i].r;
    if (!found && g_n_shared < SHARED_MAX) {
        ac_resampler *r = NULL;
        if (ac_resampler_create(orig_freq, new_freq, &r) == AC_OK) {
            g_shared[g_n_shared].orig = orig_freq;
            g_shared[g_n_shared].new_ = new_freq;
            g_shared[g_n_shared++].r = r;
            found = r;
        }
    }
    pthread_mutex_unlock(&g_shared_mu);
    return found;
}

ac_status ac_resampler_acquire(int orig_freq, int new_freq, const ac_resampler **r, ac_resampler **own) {
    *own = NULL;
    if ((*r = ac_resampler_shared(orig_freq, new_freq))) return AC_OK;
    ac_status st = ac_resampler_create(orig_freq, new_freq, own);
    *r = *own;
    return st;
}

int64_t ac_resampler_out_len(const ac_resampler *r, int64_t in_len) {
    // torchaudio: target_length = ceil(torch.as_tensor(new * length / orig)) -- a Python float turned into a
    // float32 tensor (the default dtype) before ceil; then the conv output is sliced to it.
    double ratio = (double)r->new_ * (double)in_len / (double)r->orig;
    int64_t target = (int64_t)ceilf((float)ratio);
    int64_t conv_len = (in_len / r->orig + 1) * (int64_t)r->new_;  // conv1d output blocks * phases
    return target < conv_len ? target : conv_len;
}

// The first input sample read by output (block b, phase j): padded index b * orig + first[j] is sample
// p - width. Its taps are [start, start + count[j]).
static inline int64_t tap_start(const ac_resampler *r, int64_t b, int j) {
    return b * r->orig + r->first[j] - r->width;
}

void ac_resampler_window(const ac_resampler *r, int64_t o, int64_t *lo, int64_t *hi) {
    const int j = (int)(o % r->new_);
    *lo = tap_start(r, o / r->new_, j);
    *hi = *lo + r->count[j];
}

int64_t ac_resampler_ready(const ac_resampler *r, int64_t o, int64_t avail) {
    // every output of block b reads below b * orig - width + end_max: whole blocks up to B are ready
    const int64_t num = avail + r->width - r->end_max;
    if (num >= 0) {
        const int64_t jump = (num / r->orig + 1) * r->new_;
        if (jump > o) o = jump;
    }
    int64_t b = o / r->new_;
    int j = (int)(o % r->new_);
    while (tap_start(r, b, j) + r->count[j] <= avail) {
        o++;
        if (++j == r->new_) j = 0, b++;
    }
    return o;
}

int64_t ac_resampler_first_needed(const ac_resampler *r, int64_t o) {
    return (o / r->new_) * r->orig - r->width;  // tap_start's lowest: first[j] >= 0 for every phase
}

// One output (block b, phase j): the taps' products rounded to float and added in tap order from 0.0f, the
// arithmetic every path below performs for every output (no FMA: the build targets baseline x86-64, and the AVX2
// path multiplies and adds separately), so all paths agree bit for bit.
static inline float one_output(const ac_resampler *r, const float *x, int64_t x0, int64_t in_len, int64_t b, int j) {
    const float *k = r->taps + (size_t)j * r->max_count;
    const int64_t start = tap_start(r, b, j);
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
    return acc;
}

static void run_scalar(const ac_resampler *r, const float *x, int64_t x0, int64_t in_len, int64_t o0, int64_t o1,
                       float *y) {
    int64_t b = o0 / r->new_;
    int j = (int)(o0 % r->new_);
    for (int64_t o = o0; o < o1; o++) {
        y[o - o0] = one_output(r, x, x0, in_len, b, j);
        if (++j == r->new_) j = 0, b++;
    }
}

#ifdef HAVE_AVX2_PATH
// Eight consecutive blocks at once, one per lane: output j + new * (b + v) reads x[(b + v) * orig + q] for q in
// its phase's taps, so once the group's inputs are laid out as tile[q][v] (an 8 x Q transpose, Q = the span of
// every phase's taps), each tap of each phase is one vector load, its coefficient one broadcast, and every lane
// of a phase has the same tap count: no masks, no padding. Each output is still its taps' rounded products added
// in order from +0 (no FMA), so the results are the scalar loop's bit for bit. Blocks that are not whole inside
// [o0, o1), or whose taps reach past either end of the input, go through one_output. The scalar loop's bound was
// its serial chain of 4-cycle adds; an 8-output vector per output position before this (lanes = consecutive
// outputs, gathered or transposed per tap) was held by its gathers or shuffles: 1.3x; this is ~2.5-3x.
__attribute__((target("avx2"))) static void run_poly(const ac_resampler *r, const float *x, int64_t x0,
                                                     int64_t in_len, int64_t o0, int64_t o1, float *y) {
    const int nw = r->new_, orig = r->orig, Q = r->end_max - r->first_min, qmin = r->first_min - r->width;
    float *tile = malloc(sizeof(float) * 8 * ((size_t)Q + (size_t)nw));
    int64_t o = o0, b = (o0 + nw - 1) / nw;
    for (; o < o1 && o < b * nw; o++) y[o - o0] = one_output(r, x, x0, in_len, o / nw, (int)(o % nw));
    if (tile) {
        float *out = tile + 8 * (size_t)Q;  // (new, 8): the group's outputs by phase, then written in order
        for (; (b + 8) * nw <= o1; b += 8, o += 8 * (int64_t)nw) {
            const int64_t lo = b * orig + qmin, hi = (b + 7) * orig + qmin + Q;
            if (lo < 0 || hi > in_len) {
                for (int64_t k = 0; k < 8 * (int64_t)nw; k++)
                    y[o + k - o0] = one_output(r, x, x0, in_len, b + k / nw, (int)(k % nw));
                continue;
            }
            const float *xb = x + (lo - x0);
            int q = 0;
            for (; q + 8 <= Q; q += 8) {
                __m256 row[8];
                for (int v = 0; v < 8; v++) row[v] = _mm256_loadu_ps(xb + (size_t)v * orig + q);
                const __m256 t0 = _mm256_unpacklo_ps(row[0], row[1]), t1 = _mm256_unpackhi_ps(row[0], row[1]);
                const __m256 t2 = _mm256_unpacklo_ps(row[2], row[3]), t3 = _mm256_unpackhi_ps(row[2], row[3]);
                const __m256 t4 = _mm256_unpacklo_ps(row[4], row[5]), t5 = _mm256_unpackhi_ps(row[4], row[5]);
                const __m256 t6 = _mm256_unpacklo_ps(row[6], row[7]), t7 = _mm256_unpackhi_ps(row[6], row[7]);
                const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
                const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
                const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
                const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
                float *tq = tile + 8 * (size_t)q;
                _mm256_storeu_ps(tq + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(tq + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(tq + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(tq + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(tq + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(tq + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(tq + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(tq + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
            }
            for (; q < Q; q++)
                for (int v = 0; v < 8; v++) tile[8 * (size_t)q + v] = xb[(size_t)v * orig + q];
            // four phases side by side: four independent chains of 4-cycle adds (one chain left the core idle)
            int j = 0;
            for (; j + 4 <= nw; j += 4) {
                const float *k[4], *t[4];
                int cnt[4], cmin = INT32_MAX;
                __m256 acc[4];
                for (int p = 0; p < 4; p++) {
                    k[p] = r->taps + (size_t)(j + p) * r->max_count;
                    t[p] = tile + 8 * (size_t)(r->first[j + p] - r->first_min);
                    cnt[p] = r->count[j + p];
                    cmin = cnt[p] < cmin ? cnt[p] : cmin;
                    acc[p] = _mm256_setzero_ps();
                }
                for (int i = 0; i < cmin; i++)
                    for (int p = 0; p < 4; p++)
                        acc[p] = _mm256_add_ps(acc[p], _mm256_mul_ps(_mm256_broadcast_ss(k[p] + i),
                                                                     _mm256_loadu_ps(t[p] + 8 * i)));
                for (int p = 0; p < 4; p++) {
                    for (int i = cmin; i < cnt[p]; i++)
                        acc[p] = _mm256_add_ps(acc[p], _mm256_mul_ps(_mm256_broadcast_ss(k[p] + i),
                                                                     _mm256_loadu_ps(t[p] + 8 * i)));
                    _mm256_storeu_ps(out + 8 * (size_t)(j + p), acc[p]);
                }
            }
            for (; j < nw; j++) {
                const float *k = r->taps + (size_t)j * r->max_count;
                const float *t = tile + 8 * (size_t)(r->first[j] - r->first_min);
                const int cnt = r->count[j];
                __m256 acc = _mm256_setzero_ps();
                for (int i = 0; i < cnt; i++)
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_broadcast_ss(k + i), _mm256_loadu_ps(t + 8 * i)));
                _mm256_storeu_ps(out + 8 * (size_t)j, acc);
            }
            for (int v = 0; v < 8; v++) {
                float *yv = y + (o + (int64_t)v * nw - o0);
                for (int j = 0; j < nw; j++) yv[j] = out[8 * (size_t)j + v];
            }
        }
        free(tile);
    }
    for (; o < o1; o++) y[o - o0] = one_output(r, x, x0, in_len, o / nw, (int)(o % nw));
}
#endif

void ac_resampler_run_range(const ac_resampler *r, const float *x, int64_t x0, int64_t in_len, int64_t o0,
                            int64_t o1, float *y) {
    if (o1 <= o0) return;
    // chunks at multiples of C outputs (a whole number of the AVX2 path's 8-block groups, so that only the range's
    // ends are partial): OpenMP threads for a whole long file, one or a few chunks per call in a stream's blocks
    const int64_t group = 8 * (int64_t)r->new_, C = r->simd ? group * ((8192 + group - 1) / group) : 8192;
    const int64_t k0 = o0 / C, nchunk = (o1 - 1) / C - k0 + 1;
#pragma omp parallel for schedule(static) if (nchunk > 8)
    for (int64_t c = 0; c < nchunk; c++) {
        const int64_t a = (k0 + c) * C > o0 ? (k0 + c) * C : o0, e = (k0 + c + 1) * C < o1 ? (k0 + c + 1) * C : o1;
#ifdef HAVE_AVX2_PATH
        if (r->simd) {
            run_poly(r, x, x0, in_len, a, e, y + (a - o0));
            continue;
        }
#endif
        run_scalar(r, x, x0, in_len, a, e, y + (a - o0));
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
    const ac_resampler *r = NULL;
    ac_resampler *own = NULL;  // only when the shared table is full
    int64_t n = a->n_frames;
    if (a->sample_rate != target_rate) {
        ac_status st = ac_resampler_acquire(a->sample_rate, target_rate, &r, &own);
        if (st) return st;
        n = ac_resampler_out_len(r, a->n_frames);
    }
    // mono input is copied over y whole; channels are summed into it
    float *y = a->channels > 1 ? calloc((size_t)n, sizeof(float)) : malloc((size_t)n * sizeof(float));
    float *tmp = (r && a->channels > 1) ? malloc((size_t)n * sizeof(float)) : NULL;
    if (!y || (r && a->channels > 1 && !tmp)) {
        free(y);
        free(tmp);
        ac_resampler_free(own);
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
    ac_resampler_free(own);
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
