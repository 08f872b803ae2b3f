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
    for (int64_t i = 0; bad && i < n * c; i++)
        if (!isfinite(src[i]))
            return ac_fail(AC_ERR_AUDIO, "%s: sample %lld (t=%.6f s, channel %d) is %s (hint: re-export the file)",
                           name, (long long)(i / c), (double)(i / c) / sample_rate, (int)(i % c),
                           isnan(src[i]) ? "NaN" : "infinite");
    return AC_OK;
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

ac_status ac_audio_load(const char *path, ac_audio *out, ac_audio_info *info) {
    if (!path || !out) return ac_fail(AC_ERR_INVALID_ARG, "ac_audio_load: NULL argument");
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);

    struct stat stt;
    if (stat(path, &stt) != 0)
        return ac_fail(AC_ERR_IO, "%s: cannot open: %s (hint: check the path)", path, strerror(errno));
    if (S_ISDIR(stt.st_mode)) return ac_fail(AC_ERR_IO, "%s: is a directory, not an audio file", path);
    if (stt.st_size == 0) return ac_fail(AC_ERR_AUDIO, "%s: empty file (0 bytes)", path);
    if (access(path, R_OK) != 0)
        return ac_fail(AC_ERR_IO, "%s: cannot read: %s (hint: check permissions)", path, strerror(errno));

    SF_INFO sfi;
    memset(&sfi, 0, sizeof sfi);
    SNDFILE *sf = sf_open(path, SFM_READ, &sfi);
    if (!sf)
        return ac_fail(AC_ERR_FORMAT,
                       "%s: not a decodable audio file: %s (hint: supported are WAV, AIFF, FLAC, Ogg Vorbis, "
                       "Opus and MP3; convert others with ffmpeg)",
                       path, sf_strerror(NULL));

    ac_status st = AC_OK;
    float *inter = NULL, *planar = NULL;
    int c = sfi.channels, sr = sfi.samplerate;
    int64_t n = 0;

    // frames may be unknown (SF_COUNT_MAX) for some streams: check rate/channels now, length after reading.
    st = check_shape(path, 1, c, sr);
    if (st) goto done;

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
    if (sf_error(sf) != SF_ERR_NO_ERROR) {
        st = ac_fail(AC_ERR_FORMAT, "%s: decoding failed after %lld frames: %s (hint: the file is corrupt)", path,
                     (long long)n, sf_strerror(sf));
        goto done;
    }
    if (n == 0) {
        st = ac_fail(AC_ERR_AUDIO, "%s: contains no audio samples (zero-length stream)", path);
        goto done;
    }
    if (sfi.frames > 0 && sfi.frames != SF_COUNT_MAX && n < sfi.frames) {
        st = ac_fail(AC_ERR_AUDIO,
                     "%s: truncated: the header announces %lld frames but only %lld decode (hint: the file was cut "
                     "short, e.g. by an interrupted download; re-fetch it)",
                     path, (long long)sfi.frames, (long long)n);
        goto done;
    }
    if (log_says_truncated(sf)) {
        st = ac_fail(AC_ERR_AUDIO,
                     "%s: truncated: the data chunk announces more audio than the file holds (%lld frames present; "
                     "hint: the file was cut short, e.g. by an interrupted download; re-fetch it)",
                     path, (long long)n);
        goto done;
    }
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
