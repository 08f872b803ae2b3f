// Audio decoding (host/audio.c): (1) the committed files decode to exactly what torchaudio.load gives the
// reference; (2) every format/subtype/rate/channel combination the issue lists, written here through libsndfile,
// decodes with the right shape and content; (3) broken inputs return the right status and a message naming the
// file, never a crash.
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int checks = 0;
static char g_tmp[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

// Channel c: sine at 440*(c+1) Hz, amplitude 0.5 (lossy codecs keep it recognisable).
static float *make_signal(int sr, int ch, int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n * ch);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < ch; c++) x[i * ch + c] = 0.5f * (float)sin(2 * M_PI * 440.0 * (c + 1) * (double)i / sr);
    return x;
}

static int write_file(const char *path, int format, int sr, int ch, const float *x, int64_t n) {
    SF_INFO info = {.samplerate = sr, .channels = ch, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf) {
        fprintf(stderr, "FAIL: cannot write %s (format 0x%x, %d Hz, %d ch): %s\n", path, format, sr, ch,
                sf_strerror(NULL));
        g_failures++;
        return 0;
    }
    sf_count_t w = n ? sf_writef_float(sf, x, n) : 0;
    sf_close(sf);
    return w == n;
}

typedef struct {
    const char *name, *ext;
    int format;
    double step;  // max |decoded - written| for lossless formats (quantisation); < 0 means lossy
} fmt_t;

static void check_roundtrip(const fmt_t *f, int sr, int ch) {
    char name[128];
    snprintf(name, sizeof name, "%s_%d_%dch.%s", f->name, sr, ch, f->ext);
    const char *path = tmp_path(name);
    int64_t n = sr / 2;  // 0.5 s
    float *x = make_signal(sr, ch, n);
    if (!write_file(path, f->format, sr, ch, x, n)) {
        free(x);
        return;
    }
    ac_audio a;
    ac_audio_info info;
    ac_status st = ac_audio_load(path, &a, &info);
    checks++;
    CHECK(st == AC_OK, "%s: %s", name, ac_last_error());
    if (st) {
        free(x);
        return;
    }
    checks++;
    CHECK(a.channels == ch, "%s: %d channels decoded", name, a.channels);
    int is_opus = (f->format & SF_FORMAT_SUBMASK) == SF_FORMAT_OPUS;
    // libsndfile decodes Opus at the lowest Opus rate (8/12/16/24/48 kHz) >= the encoder's input rate, which it
    // reports separately
    int want_sr = sr;
    if (is_opus) want_sr = sr <= 8000 ? 8000 : sr <= 12000 ? 12000 : sr <= 16000 ? 16000 : sr <= 24000 ? 24000 : 48000;
    checks++;
    CHECK(a.sample_rate == want_sr && info.original_rate == sr, "%s: rate %d (original %d), want %d", name,
          a.sample_rate, info.original_rate, want_sr);
    double err = 0;
    if (f->step >= 0) {
        checks++;
        CHECK(a.n_frames == n, "%s: %lld frames, wrote %lld", name, (long long)a.n_frames, (long long)n);
        if (a.n_frames == n && a.channels == ch)
            for (int64_t i = 0; i < n; i++)
                for (int c = 0; c < ch; c++) err = fmax(err, fabs(a.data[(size_t)c * n + i] - x[i * ch + c]));
        checks++;
        CHECK(err <= f->step, "%s: max |decoded - written| %.3g > %.3g", name, err, f->step);
    } else {
        // lossy: duration within 60 ms (codec delay/padding), each channel's RMS within 3 dB of 0.5/sqrt(2)
        double dur = (double)a.n_frames / a.sample_rate;
        checks++;
        CHECK(fabs(dur - 0.5) < 0.06, "%s: decoded %.3f s, wrote 0.5 s", name, dur);
        for (int c = 0; c < a.channels && c < ch; c++) {
            if (ch == 6 && c == 5) continue;  // Vorbis 5.1 order ends with LFE, which it low-passes (2640 Hz gone)
            double s = 0;
            int64_t lo = a.n_frames / 5, hi = a.n_frames * 4 / 5;
            for (int64_t i = lo; i < hi; i++) s += (double)a.data[(size_t)c * a.n_frames + i] * a.data[(size_t)c * a.n_frames + i];
            double rms_db = 10 * log10(s / (double)(hi - lo) / 0.125);
            err = fmax(err, fabs(rms_db));
        }
        checks++;
        CHECK(err < 3.0, "%s: channel RMS off by %.2f dB", name, err);
    }
    printf("  %-34s %-22s %-26s ok (%s %.3g)\n", name, info.container, info.codec,
           f->step >= 0 ? "max err" : "RMS dB", err);
    ac_audio_free(&a);
    free(x);
}

static void expect_error(const char *label, const char *path, ac_status want, const char *must_contain) {
    ac_audio a;
    ac_status st = ac_audio_load(path, &a, NULL);
    const char *msg = ac_last_error();
    checks++;
    CHECK(st == want, "%s: got %s (%s), want %s", label, ac_status_name(st), msg, ac_status_name(want));
    checks++;
    CHECK(strstr(msg, path) != NULL, "%s: message does not name the file: %s", label, msg);
    if (must_contain) {
        checks++;
        CHECK(strstr(msg, must_contain) != NULL, "%s: message lacks '%s': %s", label, must_contain, msg);
    }
    checks++;
    CHECK(a.data == NULL, "%s: data left allocated on failure", label);
    if (st == AC_OK) ac_audio_free(&a);
    printf("  %-28s -> %-14s %s\n", label, ac_status_name(st), msg);
    // the bulk pipeline's streaming decoder refuses it the same way, whole or by its head
    for (int h = 0; h < 2; h++) {
        float *y = (float *)1;
        int64_t n = -1;
        ac_status sm = ac_audio_load_mono(path, 32000, h ? 0.01 : 0, &y, &n, NULL);
        checks++;
        CHECK(sm == want && y == NULL && n == 0, "%s: streamed (head %d) gives %s (%s)", label, h,
              ac_status_name(sm), ac_last_error());
    }
}

// ac_audio_load_mono, the bulk pipeline's decoder, against ac_audio_load + ac_audio_to_model_rate: the same
// samples bit for bit, streamed over several blocks; and decoding only a head of head_t + AC_RESAMPLE_SUPPORT_S
// seconds gives the first head_t seconds of that, with the whole file's duration.
static void check_mono(const char *ext, int format, int sr, int ch, double seconds, double head_t) {
    char name[128];
    snprintf(name, sizeof name, "mono_%d_%dch_%g.%s", sr, ch, seconds, ext);
    const char *path = tmp_path(name);
    const int64_t n = (int64_t)(seconds * sr);
    float *x = make_signal(sr, ch, n);
    uint32_t r = 7u * (uint32_t)sr + (uint32_t)ch;
    for (int64_t i = 0; i < n * ch; i++) {  // noise: every tap of the resampler matters
        r = r * 1664525u + 1013904223u;
        x[i] = 0.8f * x[i] + 0.1f * ((float)(r >> 8) / 16777216.0f - 0.5f);
    }
    int ok = write_file(path, format, sr, ch, x, n);
    free(x);
    checks++;
    CHECK(ok, "%s: not written", name);
    if (!ok) return;
    ac_audio a;
    float *ref = NULL, *y = NULL, *yh = NULL;
    int64_t nref = 0, ny = 0, nh = 0;
    double dur = 0, dh = 0;
    CHECK_OK(ac_audio_load(path, &a, NULL));
    CHECK_OK(ac_audio_to_model_rate(&a, 32000, &ref, &nref));
    const double want_dur = (double)a.n_frames / sr;
    ac_audio_free(&a);
    CHECK_OK(ac_audio_load_mono(path, 32000, 0, &y, &ny, &dur));
    checks++;
    CHECK(ny == nref && y && memcmp(y, ref, sizeof(float) * (size_t)nref) == 0 && dur == want_dur,
          "%s: streamed %lld samples (%g s) vs %lld (%g s), or different values", name, (long long)ny, dur,
          (long long)nref, want_dur);
    const int64_t m = (int64_t)(head_t * 32000);
    checks++;
    CHECK(head_t + AC_RESAMPLE_SUPPORT_S < seconds, "%s: the head covers the whole file: nothing tested", name);
    CHECK_OK(ac_audio_load_mono(path, 32000, head_t + AC_RESAMPLE_SUPPORT_S, &yh, &nh, &dh));
    checks++;
    CHECK(nh >= m && nh < nref && yh && memcmp(yh, ref, sizeof(float) * (size_t)m) == 0 && dh == want_dur,
          "%s: head of %g s: %lld samples (want >= %lld, < %lld) or a different start, duration %g (want %g)", name,
          head_t, (long long)nh, (long long)m, (long long)nref, dh, want_dur);
    printf("  %-28s %lld samples at 32 kHz, streamed = whole; head %g s = its start\n", name, (long long)nref,
           head_t);
    free(ref), free(y), free(yh);
}

static void truncate_file(const char *path, double keep) {
    struct stat s;
    if (stat(path, &s) == 0 && truncate(path, (off_t)(s.st_size * keep)) != 0) g_failures++;
}

static void patch_u32(const char *path, long off, unsigned v) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    fseek(f, off, SEEK_SET);
    fwrite(b, 1, 4, f);
    fclose(f);
}

static void test_goldens(void) {
    printf("committed files vs torchaudio.load:\n");
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(golden_manifest(), "files")) {
        const char *file = cJSON_GetObjectItem(e, "file")->valuestring;
        char rel[512];
        snprintf(rel, sizeof rel, "audio/%s", file);
        ac_audio a;
        ac_audio_info info;
        ac_status st = ac_audio_load(data_path(rel), &a, &info);
        checks++;
        CHECK(st == AC_OK, "%s: %s", file, ac_last_error());
        if (st) continue;
        int sr = cJSON_GetObjectItem(e, "sample_rate")->valueint, ch = cJSON_GetObjectItem(e, "channels")->valueint;
        int64_t n = (int64_t)cJSON_GetObjectItem(e, "n_in")->valuedouble;
        checks++;
        CHECK(a.sample_rate == sr && a.channels == ch && a.n_frames == n, "%s: %d Hz %d ch %lld frames", file,
              a.sample_rate, a.channels, (long long)a.n_frames);
        if (a.n_frames == n && a.channels == ch) {
            double sum = 0, sumsq = 0;
            for (int64_t i = 0; i < n * ch; i++) sum += a.data[i], sumsq += (double)a.data[i] * a.data[i];
            double want_sum = cJSON_GetObjectItem(e, "decoded_sum")->valuedouble;
            double want_sq = cJSON_GetObjectItem(e, "decoded_sumsq")->valuedouble;
            checks++;
            CHECK(fabs(sum - want_sum) <= TOL_DECODE_SUM_REL * fmax(1.0, sqrt(want_sq)) &&
                      fabs(sumsq - want_sq) <= TOL_DECODE_SUM_REL * fmax(1.0, want_sq),
                  "%s: sum %.17g vs %.17g, sumsq %.17g vs %.17g", file, sum, want_sum, sumsq, want_sq);
            // head/tail: torchaudio's (C, 8) slices, flattened channel-major
            cJSON *head = cJSON_GetObjectItem(e, "decoded_head"), *tail = cJSON_GetObjectItem(e, "decoded_tail");
            int k = n < 8 ? (int)n : 8, bad = 0;
            for (int c = 0; c < ch; c++)
                for (int i = 0; i < k; i++) {
                    if ((float)cJSON_GetArrayItem(head, c * k + i)->valuedouble != a.data[(size_t)c * n + i]) bad++;
                    if ((float)cJSON_GetArrayItem(tail, c * k + i)->valuedouble != a.data[(size_t)c * n + n - k + i]) bad++;
                }
            checks++;
            CHECK(bad == 0, "%s: %d head/tail samples differ from torchaudio.load", file, bad);
        }
        printf("  %-30s %6d Hz %d ch %7lld frames  %s / %s: identical\n", file, a.sample_rate, a.channels,
               (long long)a.n_frames, info.container, info.codec);
        ac_audio_free(&a);
    }
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "test_audio_tmp_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_goldens();

    printf("formats written by libsndfile, decoded by audiocap:\n");
    const fmt_t lossless[] = {
        {"wav_u8", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1.0 / 128},
        {"wav_s16", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 32768},
        {"wav_s24", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1.0 / 8388608},
        {"wav_s32", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1e-7},
        {"wav_f32", "wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.0},
        {"wav_f64", "wav", SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 0.0},
        {"aiff_s16", "aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 1.0 / 32768},
        {"flac_s16", "flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 32768},
        {"flac_s24", "flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 1.0 / 8388608},
    };
    const int rates[] = {8000, 16000, 22050, 32000, 44100, 48000, 96000, 192000};
    const int chans[] = {1, 2, 6};
    for (size_t f = 0; f < sizeof lossless / sizeof *lossless; f++)
        for (size_t r = 0; r < sizeof rates / sizeof *rates; r++)
            for (size_t c = 0; c < 3; c++) {
                // the full rate x channel grid for 16-bit WAV and FLAC; one stereo/6ch pair elsewhere
                int full = f == 1 || f == 7;
                if (!full && !(rates[r] == 44100 || (rates[r] == 96000 && chans[c] == 6))) continue;
                check_roundtrip(&lossless[f], rates[r], chans[c]);
            }
    const fmt_t vorbis = {"ogg_vorbis", "ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, -1};
    const fmt_t opus = {"ogg_opus", "opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, -1};
    const fmt_t mp3 = {"mp3", "mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, -1};
    check_roundtrip(&vorbis, 44100, 2);
    check_roundtrip(&vorbis, 48000, 6);
    check_roundtrip(&vorbis, 22050, 1);
    check_roundtrip(&opus, 48000, 2);
    check_roundtrip(&opus, 16000, 1);
    check_roundtrip(&opus, 8000, 1);
    check_roundtrip(&mp3, 44100, 2);
    check_roundtrip(&mp3, 16000, 1);
    check_roundtrip(&mp3, 8000, 1);

    printf("streamed to mono at 32 kHz (the bulk pipeline's decoder):\n");
    const int s16 = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    check_mono("wav", s16, 44100, 2, 3.7, 2);    // three decoding blocks
    check_mono("wav", s16, 48000, 1, 3.1, 1);
    check_mono("wav", s16, 44101, 2, 4.5, 2);    // gcd 1 with 32 kHz: each output block spans a second of input
    check_mono("wav", s16, 7919, 3, 9.0, 3);     // a prime rate, three channels
    check_mono("wav", s16, 32000, 1, 5.0, 2);    // the model rate: copied
    check_mono("wav", s16, 32000, 2, 3.0, 1);    // the model rate, channels averaged
    check_mono("wav", s16, 96000, 6, 2.0, 0.5);
    check_mono("wav", s16, 8000, 1, 10.0, 4);
    check_mono("flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 2, 3.0, 1);  // the head's length found by seeking
    check_mono("wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, 2.0, 0.5);
    // lossy formats: the head's length found by seeking in the stream
    check_mono("ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, 3.0, 1);
    check_mono("opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 2, 3.0, 1);
    check_mono("mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2, 3.0, 1);
    {
        // NaN at 2.5 s: refused whole, not looked for past a 1 s head
        const int64_t n = 3 * 16000;
        float *z = make_signal(16000, 1, n);
        z[40000] = NAN;
        write_file(tmp_path("late_nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, z, n);
        free(z);
        float *y = NULL;
        int64_t ny = 0;
        double d = 0;
        checks += 2;
        CHECK(ac_audio_load_mono(tmp_path("late_nan.wav"), 32000, 0, &y, &ny, NULL) == AC_ERR_AUDIO && !y &&
              strstr(ac_last_error(), "NaN") && strstr(ac_last_error(), "t=2.500000"),
              "late NaN, whole file: %s", ac_last_error());
        CHECK(ac_audio_load_mono(tmp_path("late_nan.wav"), 32000, 1.0 + AC_RESAMPLE_SUPPORT_S, &y, &ny, &d) ==
                  AC_OK && ny > 32000 && d == 3.0, "late NaN past the head: %s", ac_last_error());
        free(y);
    }

    printf("broken inputs:\n");
    expect_error("missing file", tmp_path("does_not_exist.wav"), AC_ERR_IO, "No such file");
    expect_error("directory", g_tmp, AC_ERR_IO, "directory");
    FILE *fp = fopen(tmp_path("empty.wav"), "wb");
    fclose(fp);
    expect_error("empty file", tmp_path("empty.wav"), AC_ERR_AUDIO, "empty");
    fp = fopen(tmp_path("text.wav"), "wb");
    fputs("this is not audio, just text pretending to be a wav file\n", fp);
    fclose(fp);
    expect_error("text file", tmp_path("text.wav"), AC_ERR_FORMAT, "not a decodable");
    fp = fopen(tmp_path("random.flac"), "wb");
    srand(3);
    for (int i = 0; i < 8192; i++) fputc(rand() & 0xff, fp);
    fclose(fp);
    expect_error("random bytes", tmp_path("random.flac"), AC_ERR_FORMAT, NULL);
    write_file(tmp_path("zero_frames.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, NULL, 0);
    expect_error("zero-length stream", tmp_path("zero_frames.wav"), AC_ERR_AUDIO, "no audio samples");

    float *x = make_signal(16000, 2, 16000);
    write_file(tmp_path("truncated.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 2, x, 16000);
    truncate_file(tmp_path("truncated.wav"), 0.6);
    expect_error("truncated WAV", tmp_path("truncated.wav"), AC_ERR_AUDIO, "truncated");
    write_file(tmp_path("truncated.flac"), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 2, x, 16000);
    truncate_file(tmp_path("truncated.flac"), 0.5);
    {
        ac_audio a;
        ac_status st = ac_audio_load(tmp_path("truncated.flac"), &a, NULL);
        checks++;
        CHECK(st == AC_ERR_AUDIO || st == AC_ERR_FORMAT, "truncated FLAC: %s", ac_status_name(st));
        printf("  %-28s -> %-14s %s\n", "truncated FLAC", ac_status_name(st), ac_last_error());
        if (!st) ac_audio_free(&a);
        for (int h = 0; h < 2; h++) {  // streamed: also when only a head inside what is left is decoded
            float *y = NULL;
            int64_t n = 0;
            st = ac_audio_load_mono(tmp_path("truncated.flac"), 32000, h ? 0.1 : 0, &y, &n, NULL);
            checks++;
            CHECK((st == AC_ERR_AUDIO || st == AC_ERR_FORMAT) && !y, "truncated FLAC streamed (head %d): %s", h,
                  ac_status_name(st));
            printf("  %-28s -> %-14s %s\n", h ? "truncated FLAC, 0.1 s head" : "truncated FLAC, streamed",
                   ac_status_name(st), ac_last_error());
            free(y);
        }
    }
    float bad[8] = {0.1f, 0.2f, 0.3f, NAN, 0.5f, 0.6f, 0.7f, 0.8f};
    write_file(tmp_path("nan.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, bad, 4);
    expect_error("NaN sample", tmp_path("nan.wav"), AC_ERR_AUDIO, "NaN");
    bad[3] = 0.4f;
    bad[6] = INFINITY;
    write_file(tmp_path("inf.wav"), SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, bad, 4);
    expect_error("infinite sample", tmp_path("inf.wav"), AC_ERR_AUDIO, "infinite");
    // WAV fmt chunk: sample rate at byte 24, byte rate at 28 (canonical 44-byte header from libsndfile)
    write_file(tmp_path("rate1.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, 8000);
    patch_u32(tmp_path("rate1.wav"), 24, 1);
    patch_u32(tmp_path("rate1.wav"), 28, 2);
    expect_error("1 Hz sample rate", tmp_path("rate1.wav"), AC_ERR_AUDIO, "sample rate");
    write_file(tmp_path("rate_huge.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x, 8000);
    patch_u32(tmp_path("rate_huge.wav"), 24, 2000000000u);
    patch_u32(tmp_path("rate_huge.wav"), 28, 4000000000u);
    expect_error("2 GHz sample rate", tmp_path("rate_huge.wav"), AC_ERR_AUDIO, "sample rate");
    free(x);

    // in-memory input gets the same checks
    ac_audio a;
    checks++;
    CHECK(ac_audio_from_interleaved("mem", bad, 4, 2, 16000, &a) == AC_ERR_AUDIO, "in-memory Inf accepted");
    checks++;
    CHECK(ac_audio_from_interleaved("mem", bad, 0, 2, 16000, &a) == AC_ERR_AUDIO, "in-memory empty accepted");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return test_finish("test_audio", checks);
}
