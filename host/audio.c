// Audio decoding with libsndfile and input validation.
// Output: ac_audio.data (channels, n_frames) planar float32, normalised the way torchaudio.load normalises
// (integer PCM / 2^(bits-1); float kept as stored), which is what the CoNeTTE preprocessor feeds to
// torchaudio.functional.resample (conette: src/conette/huggingface/preprocessor.py:79-80).
#include "ac.h"
#include "status.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Bound on decoded samples (all channels) held in memory: 2^30 floats = 4 GiB.
#define AC_MAX_TOTAL_SAMPLES ((int64_t)1 << 30)

void ac_audio_free(ac_audio *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static ac_status check_shape(const char *name, int64_t n_frames, int channels, int sample_rate) {
    if (sample_rate < AC_MIN_SAMPLE_RATE || sample_rate > AC_MAX_SAMPLE_RATE)
        return ac_fail(AC_ERR_AUDIO,
                       "%s: absurd sample rate %d Hz (accepted: %d..%d Hz; hint: the header is probably corrupt)",
                       name, sample_rate, AC_MIN_SAMPLE_RATE, AC_MAX_SAMPLE_RATE);
    if (channels < 1 || channels > AC_MAX_CHANNELS)
        return ac_fail(AC_ERR_AUDIO, "%s: %d channels (accepted: 1..%d; hint: the header is probably corrupt)",
                       name, channels, AC_MAX_CHANNELS);
    if (n_frames <= 0)
        return ac_fail(AC_ERR_AUDIO, "%s: contains no audio samples (zero-length stream)", name);
    if (n_frames > AC_MAX_TOTAL_SAMPLES / channels || (double)n_frames / sample_rate > AC_MAX_SECONDS)
        return ac_fail(AC_ERR_AUDIO,
                       "%s: too long to decode at once (%.0f s, %d channels; limit %.0f s and 2^30 samples; "
                       "hint: split the file)",
                       name, (double)n_frames / sample_rate, channels, AC_MAX_SECONDS);
    return AC_OK;
}

// The error for the first NaN/Inf among interleaved (n, c) frames that are frames frame0.. of the file; AC_OK if
// none (the scan that names it, once a cheaper pass has seen one).
static ac_status nonfinite_error(const char *name, const float *src, int64_t n, int c, int sample_rate,
                                 int64_t frame0) {
    for (int64_t i = 0; i < n * c; i++)
        if (!isfinite(src[i])) {
            const int64_t f = frame0 + i / c;
            return ac_fail(AC_ERR_AUDIO, "%s: sample %lld (t=%.6f s, channel %d) is %s (hint: re-export the file)",
                           name, (long long)f, (double)f / sample_rate, (int)(i % c),
                           isnan(src[i]) ? "NaN" : "infinite");
        }
    return AC_OK;
}

// Interleaved (n, c) -> planar (c, n), rejecting NaN/Inf with the first offending position. The copy flags
// non-finite values without branching, so that it vectorises (it was half of a WAV file's decode time); only a
// file that has one is scanned again for the message.
static ac_status deinterleave_checked(const char *name, const float *src, int64_t n, int c, int sample_rate,
                                      float *dst) {
    int bad = 0;
    if (c == 1) {  // the common case, as a plain copy the compiler vectorises
        for (int64_t i = 0; i < n; i++) {
            dst[i] = src[i];
            bad |= !(fabsf(src[i]) <= FLT_MAX);
        }
    } else {
        for (int ch = 0; ch < c; ch++) {
            float *d = dst + (int64_t)ch * n;
            const float *s = src + ch;
            for (int64_t i = 0; i < n; i++) {
                const float v = s[i * c];
                d[i] = v;
                bad |= !(fabsf(v) <= FLT_MAX);
            }
        }
    }
    return bad ? nonfinite_error(name, src, n, c, sample_rate, 0) : AC_OK;
}

ac_status ac_audio_from_interleaved(const char *name, const float *interleaved, int64_t n_frames, int channels,
                                    int sample_rate, ac_audio *out) {
    if (!out || !name || (!interleaved && n_frames > 0))
        return ac_fail(AC_ERR_INVALID_ARG, "ac_audio_from_interleaved: NULL argument");
    memset(out, 0, sizeof *out);
    ac_status st = check_shape(name, n_frames, channels, sample_rate);
    if (st) return st;
    float *d = malloc((size_t)n_frames * channels * sizeof(float));
    if (!d) return ac_fail(AC_ERR_NOMEM, "%s: cannot allocate %lld samples", name, (long long)n_frames * channels);
    st = deinterleave_checked(name, interleaved, n_frames, channels, sample_rate, d);
    if (st) {
        free(d);
        return st;
    }
    out->data = d;
    out->n_frames = n_frames;
    out->channels = channels;
    out->sample_rate = sample_rate;
    return AC_OK;
}

static void format_name(int format, char *dst, size_t cap) {
    SF_FORMAT_INFO fi = {.format = format};
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name)
        snprintf(dst, cap, "%s", fi.name);
    else
        snprintf(dst, cap, "0x%x", (unsigned)format);
}

// libsndfile repairs a WAV/AIFF whose data chunk claims more bytes than the file holds (an interrupted
// download or copy) and says so only in its log ("... (should be N)"). We call that file truncated.
static int log_says_truncated(SNDFILE *sf) {
    char log[8192];
    if (sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log) <= 0) return 0;
    return strstr(log, "should be") != NULL || strstr(log, "truncated") != NULL;
}

// The file opened for decoding, with its rate and channel count checked (its length may be unknown: checked
// after reading).
static ac_status open_checked(const char *path, SNDFILE **out, SF_INFO *sfi) {
    *out = NULL;
    struct stat stt;
    if (stat(path, &stt) != 0)
        return ac_fail(AC_ERR_IO, "%s: cannot open: %s (hint: check the path)", path, strerror(errno));
    if (S_ISDIR(stt.st_mode)) return ac_fail(AC_ERR_IO, "%s: is a directory, not an audio file", path);
    if (stt.st_size == 0) return ac_fail(AC_ERR_AUDIO, "%s: empty file (0 bytes)", path);
    if (access(path, R_OK) != 0)
        return ac_fail(AC_ERR_IO, "%s: cannot read: %s (hint: check permissions)", path, strerror(errno));
    memset(sfi, 0, sizeof *sfi);
    SNDFILE *sf = sf_open(path, SFM_READ, sfi);
    if (!sf)
        return ac_fail(AC_ERR_FORMAT,
                       "%s: not a decodable audio file: %s (hint: supported are WAV, AIFF, FLAC, Ogg Vorbis, "
                       "Opus and MP3; convert others with ffmpeg)",
                       path, sf_strerror(NULL));
    ac_status st = check_shape(path, 1, sfi->channels, sfi->samplerate);
    if (st) {
        sf_close(sf);
        return st;
    }
    *out = sf;
    return AC_OK;
}

// After n frames were decoded: the reasons to refuse the file (a decoding error, no audio, fewer frames than the
// header announces, a repaired data chunk), else AC_OK.
static ac_status check_end(const char *path, SNDFILE *sf, const SF_INFO *sfi, int64_t n) {
    if (sf_error(sf) != SF_ERR_NO_ERROR)
        return ac_fail(AC_ERR_FORMAT, "%s: decoding failed after %lld frames: %s (hint: the file is corrupt)", path,
                       (long long)n, sf_strerror(sf));
    if (n == 0) return ac_fail(AC_ERR_AUDIO, "%s: contains no audio samples (zero-length stream)", path);
    if (sfi->frames > 0 && sfi->frames != SF_COUNT_MAX && n < sfi->frames)
        return ac_fail(AC_ERR_AUDIO,
                       "%s: truncated: the header announces %lld frames but only %lld decode (hint: the file was cut "
                       "short, e.g. by an interrupted download; re-fetch it)",
                       path, (long long)sfi->frames, (long long)n);
    if (log_says_truncated(sf))
        return ac_fail(AC_ERR_AUDIO,
                       "%s: truncated: the data chunk announces more audio than the file holds (%lld frames present; "
                       "hint: the file was cut short, e.g. by an interrupted download; re-fetch it)",
                       path, (long long)n);
    return AC_OK;
}

ac_status ac_audio_load(const char *path, ac_audio *out, ac_audio_info *info) {
    if (!path || !out) return ac_fail(AC_ERR_INVALID_ARG, "ac_audio_load: NULL argument");
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);

    SF_INFO sfi;
    SNDFILE *sf = NULL;
    ac_status st = open_checked(path, &sf, &sfi);
    if (st) return st;
    float *inter = NULL, *planar = NULL;
    int c = sfi.channels, sr = sfi.samplerate;
    int64_t n = 0;

    const int64_t chunk = 1 << 16;
    int64_t cap = (sfi.frames > 0 && sfi.frames < AC_MAX_TOTAL_SAMPLES / c) ? sfi.frames + 1 : chunk;
    inter = malloc((size_t)cap * c * sizeof(float));
    if (!inter) {
        st = ac_fail(AC_ERR_NOMEM, "%s: cannot allocate %lld samples", path, (long long)cap * c);
        goto done;
    }
    for (;;) {
        if (n + chunk > cap) {
            int64_t ncap = cap * 2 > n + chunk ? cap * 2 : n + chunk;
            if (ncap > AC_MAX_TOTAL_SAMPLES / c + chunk) {
                st = check_shape(path, AC_MAX_TOTAL_SAMPLES / c + 1, c, sr);
                goto done;
            }
            float *p = realloc(inter, (size_t)ncap * c * sizeof(float));
            if (!p) {
                st = ac_fail(AC_ERR_NOMEM, "%s: cannot allocate %lld samples", path, (long long)ncap * c);
                goto done;
            }
            inter = p;
            cap = ncap;
        }
        sf_count_t got = sf_readf_float(sf, inter + n * c, chunk);
        if (got <= 0) break;
        n += got;
    }
    if ((st = check_end(path, sf, &sfi, n))) goto done;
    st = check_shape(path, n, c, sr);
    if (st) goto done;

    planar = malloc((size_t)n * c * sizeof(float));
    if (!planar) {
        st = ac_fail(AC_ERR_NOMEM, "%s: cannot allocate %lld samples", path, (long long)n * c);
        goto done;
    }
    st = deinterleave_checked(path, inter, n, c, sr, planar);
    if (st) goto done;

    out->data = planar;
    planar = NULL;
    out->n_frames = n;
    out->channels = c;
    out->sample_rate = sr;
    if (info) {
        format_name(sfi.format & SF_FORMAT_TYPEMASK, info->container, sizeof info->container);
        format_name(sfi.format & SF_FORMAT_SUBMASK, info->codec, sizeof info->codec);
        info->sample_rate = sr;
        int orig = 0;
        if ((sfi.format & SF_FORMAT_SUBMASK) == SF_FORMAT_OPUS &&
            sf_command(sf, SFC_GET_ORIGINAL_SAMPLERATE, &orig, sizeof orig) == SF_TRUE && orig > 0)
            info->original_rate = orig;
        else
            info->original_rate = sr;
        info->channels = c;
        info->n_frames = n;
    }
done:
    free(inter);
    free(planar);
    sf_close(sf);
    return st;
}

double ac_audio_probe_seconds(const char *path) {
    SF_INFO sfi;
    memset(&sfi, 0, sizeof sfi);
    SNDFILE *sf = sf_open(path, SFM_READ, &sfi);
    if (!sf) return -1;
    const double d = sfi.frames > 0 && sfi.frames < SF_COUNT_MAX && sfi.samplerate > 0
                         ? (double)sfi.frames / sfi.samplerate
                         : -1;
    sf_close(sf);  // read-only: nothing to report
    return d;
}

// ---- streaming to mono at the model rate (ac_audio_load_mono) -----------------------------------------------
#define MONO_BLOCK 65536  // frames decoded per libsndfile call

// Grows *buf (floats) to hold at least need; 1 on failure.
static int grow_floats(float **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) return 0;
    int64_t c = *cap > 0 ? *cap : MONO_BLOCK;
    while (c < need) c *= 2;
    float *p = realloc(*buf, sizeof(float) * (size_t)c);
    if (!p) return 1;
    *buf = p;
    *cap = c;
    return 0;
}

// Frames from the current position to the end, decoded block by block and dropped; -1 on a decoding error.
static int64_t count_rest(SNDFILE *sf, int c) {
    float *buf = malloc(sizeof(float) * 4096 * (size_t)c);
    if (!buf) return -1;
    int64_t n = 0;
    sf_count_t got;
    while ((got = sf_readf_float(sf, buf, 4096)) > 0) n += got;
    free(buf);
    return sf_error(sf) != SF_ERR_NO_ERROR ? -1 : n;
}

typedef struct {
    const ac_resampler *r;  // NULL: the file is at the output rate
    int c;
    float **hist;           // (c) input samples [h0, h0 + hn) of each channel (resampling only)
    int64_t h0, hn, hcap;
    float *tmp;             // one channel's outputs of a range, when channels are averaged
    int64_t tcap;
    float *y;               // the output so far
    int64_t yn, ycap;
} mono_stream;

// Outputs [s->yn, o1) into y: each channel resampled (or copied), channels summed in order from 0 and divided
// by their count, as ac_audio_to_model_rate does per whole channel. in_len: the input's length, or INT64_MAX.
static int emit(mono_stream *s, int64_t o1, int64_t in_len, const float *block) {
    const int64_t m = o1 - s->yn;
    if (m <= 0) return 0;
    if (grow_floats(&s->y, &s->ycap, o1) || (s->c > 1 && grow_floats(&s->tmp, &s->tcap, m))) return 1;
    float *y = s->y + s->yn;
    if (s->c > 1) memset(y, 0, sizeof(float) * (size_t)m);
    for (int ch = 0; ch < s->c; ch++) {
        float *dst = s->c > 1 ? s->tmp : y;
        if (s->r) ac_resampler_run_range(s->r, s->hist[ch], s->h0, in_len, s->yn, o1, dst);
        else
            for (int64_t i = 0; i < m; i++) dst[i] = block[i * s->c + ch];  // same rate: block holds [yn, o1)
        if (s->c > 1)
            for (int64_t i = 0; i < m; i++) y[i] += dst[i];
    }
    if (s->c > 1) {
        const float fc = (float)s->c;
        for (int64_t i = 0; i < m; i++) y[i] /= fc;
    }
    s->yn = o1;
    return 0;
}

// Appends a block of got frames (interleaved) to the channel histories, dropping what no later output reads.
static int push_history(mono_stream *s, const float *block, int64_t got) {
    int64_t keep = ac_resampler_first_needed(s->r, s->yn);
    if (keep > s->h0 + s->hn) keep = s->h0 + s->hn;
    if (keep > s->h0) {
        const int64_t drop = keep - s->h0;
        for (int ch = 0; ch < s->c; ch++)
            memmove(s->hist[ch], s->hist[ch] + drop, sizeof(float) * (size_t)(s->hn - drop));
        s->h0 = keep;
        s->hn -= drop;
    }
    if (s->hn + got > s->hcap) {
        int64_t cap = s->hcap;
        for (int ch = 0; ch < s->c; ch++) {
            cap = s->hcap;
            if (grow_floats(&s->hist[ch], &cap, s->hn + got)) return 1;
        }
        s->hcap = cap;
    }
    if (s->c == 1) memcpy(s->hist[0] + s->hn, block, sizeof(float) * (size_t)got);
    else
        for (int ch = 0; ch < s->c; ch++)
            for (int64_t i = 0; i < got; i++) s->hist[ch][s->hn + i] = block[i * s->c + ch];
    s->hn += got;
    return 0;
}

ac_status ac_audio_load_mono(const char *path, int rate, double head_s, float **out, int64_t *out_len,
                             double *duration_s) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (duration_s) *duration_s = 0;
    if (!path || !out || !out_len || rate < AC_MIN_SAMPLE_RATE || rate > AC_MAX_SAMPLE_RATE || !(head_s >= 0))
        return ac_fail(AC_ERR_INVALID_ARG, "ac_audio_load_mono: NULL argument, rate %d or head %g s", rate, head_s);
    SF_INFO sfi;
    SNDFILE *sf = NULL;
    ac_status st = open_checked(path, &sf, &sfi);
    if (st) return st;
    const int c = sfi.channels, sr = sfi.samplerate;
    const int known = sfi.frames > 0 && sfi.frames != SF_COUNT_MAX;
    const int64_t head = head_s > 0 ? (int64_t)ceil(head_s * sr) : INT64_MAX;
    const int64_t max_in = (int64_t)(AC_MAX_SECONDS * sr);
    mono_stream s = {.c = c};
    ac_resampler *own = NULL;  // only when the shared table cannot give one
    const ac_resampler *r = NULL;
    float *block = malloc(sizeof(float) * MONO_BLOCK * (size_t)c);
    // 16-bit PCM (WAV, FLAC, AIFF...) is read as the integers and scaled here: libsndfile's own conversion, one
    // sample at a time, was half of a 32 kHz WAV's decoding. k * 2^-15 is exact in float, so the values are the
    // ones sf_readf_float gives (normalised float, libsndfile's default), and integers need no NaN/Inf scan.
    const int s16 = (sfi.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16;
    short *sblock = s16 ? malloc(sizeof(short) * MONO_BLOCK * (size_t)c) : NULL;
    if (!block || (s16 && !sblock)) {
        st = ac_fail(AC_ERR_NOMEM, "%s: cannot allocate a decoding block", path);
        goto done;
    }
    if (sr != rate) {
        if ((st = ac_resampler_acquire(sr, rate, &r, &own))) goto done;
        s.r = r;
        if (!(s.hist = calloc((size_t)c, sizeof(float *)))) {
            st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    if (known) {  // the output's final size, allocated once
        const int64_t in = sfi.frames < head ? sfi.frames : head;
        const int64_t want = r ? ac_resampler_out_len(r, in) : in;
        if (in <= max_in && grow_floats(&s.y, &s.ycap, want > 0 ? want : 1)) {
            st = ac_fail(AC_ERR_NOMEM, "%s: cannot allocate %lld output samples", path, (long long)want);
            goto done;
        }
    }
    // mono at the output rate (the common case: a 16-bit file at the model's rate) is read in place
    const int direct = !r && c == 1;
    int64_t n = 0;  // input frames decoded
    for (;;) {
        const int64_t want = head - n < MONO_BLOCK ? head - n : MONO_BLOCK;
        if (want <= 0) break;
        if (direct && grow_floats(&s.y, &s.ycap, n + want)) {
            st = ac_fail(AC_ERR_NOMEM, "%s: out of memory after %lld frames", path, (long long)n);
            goto done;
        }
        float *dst = direct ? s.y + n : block;
        const sf_count_t got = s16 ? sf_readf_short(sf, sblock, want) : sf_readf_float(sf, dst, want);
        if (got <= 0) break;
        if (s16) {
            for (int64_t i = 0; i < got * c; i++) dst[i] = (float)sblock[i] * (1.0f / 32768.0f);
        } else {
            int bad = 0;
            for (int64_t i = 0; i < got * c; i++) bad |= !(fabsf(dst[i]) <= FLT_MAX);
            if (bad && (st = nonfinite_error(path, dst, got, c, sr, n))) goto done;
        }
        if (n + got > max_in) {
            st = check_shape(path, n + got, 1, sr);  // the duration limit's message
            goto done;
        }
        int fail = 0;
        if (direct) s.yn = n + got;
        else if (!r) fail = emit(&s, n + got, INT64_MAX, block);
        else {
            fail = push_history(&s, block, got);
            // every output whose window ends within what has been read
            if (!fail) fail = emit(&s, ac_resampler_ready(r, s.yn, n + got), INT64_MAX, NULL);
        }
        if (fail) {
            st = ac_fail(AC_ERR_NOMEM, "%s: out of memory after %lld frames", path, (long long)(n + got));
            goto done;
        }
        n += got;
    }
    int64_t total = n;
    if (n == head && sf_error(sf) == SF_ERR_NO_ERROR) {  // stopped at the head: the file's length, and is it whole
        float last[AC_MAX_CHANNELS];
        if (known && sfi.frames <= n) total = sfi.frames;
        else if (known && sf_seek(sf, sfi.frames - 1, SEEK_SET) == sfi.frames - 1 && sf_readf_float(sf, last, 1) == 1)
            total = sfi.frames;  // its last frame decodes: nothing was cut off
        else {
            // no length in the header, or a last frame that does not decode (a cut file), or no seeking in this
            // format: decode the rest and count it, from where the head ended if the seek back works, else
            // from the start of the file opened again (a failed seek may have left the position anywhere)
            int64_t rest = sf_seek(sf, n, SEEK_SET) == n ? count_rest(sf, c) : -1, from = n;
            if (rest < 0) {
                SF_INFO again;
                memset(&again, 0, sizeof again);
                sf_close(sf);
                sf = sf_open(path, SFM_READ, &again);
                rest = sf ? count_rest(sf, c) : -1;
                from = 0;
            }
            if (rest < 0) {
                st = ac_fail(AC_ERR_FORMAT, "%s: decoding failed after the first %lld frames: %s (hint: the file is "
                             "corrupt)", path, (long long)n, sf_strerror(sf));
                goto done;
            }
            total = from + rest;
        }
    }
    if ((st = check_end(path, sf, &sfi, n == head ? total : n))) goto done;
    if (r && emit(&s, ac_resampler_out_len(r, n), n, NULL)) {  // the tail, with the input's end known
        st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    *out = s.y;
    *out_len = s.yn;
    s.y = NULL;
    if (duration_s) *duration_s = (double)total / sr;
done:
    for (int ch = 0; s.hist && ch < c; ch++) free(s.hist[ch]);
    free(s.hist);
    free(s.tmp);
    free(s.y);
    free(block);
    free(sblock);
    ac_resampler_free(own);
    sf_close(sf);
    return st;
}
