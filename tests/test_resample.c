// Resampler (host/resample.c) vs torchaudio.functional.resample, through the same path the CoNeTTE
// preprocessor takes (decode -> resample each channel to 32 kHz -> channel mean), on every committed test file,
// on seeded signals at odd rates (1 kHz .. 192 kHz), and on output lengths including the float32 rounding case.
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;

static void check_signal(const char *label, const char *golden, const float *got, int64_t n) {
    ac_npy ref;
    golden_npy(golden, &ref);
    checks++;
    CHECK(ref.size == n, "%s: length %lld, torchaudio gives %lld", label, (long long)n, (long long)ref.size);
    if (ref.size == n) {
        double snr = snr_db(ref.data, got, n);
        char l[256];
        snprintf(l, sizeof l, "%s SNR vs torchaudio", label);
        CHECK(report(l, snr, TOL_RESAMPLE_SNR_DB, 1), "%s", label);
    }
    ac_npy_free(&ref);
}

int main(void) {
    cJSON *m = golden_manifest();
    printf("files (decode + resample to 32 kHz + channel mean):\n");
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "files")) {
        const char *file = cJSON_GetObjectItem(e, "file")->valuestring;
        char rel[512];
        snprintf(rel, sizeof rel, "audio/%s", file);
        ac_audio a;
        ac_status st = ac_audio_load(data_path(rel), &a, NULL);
        CHECK_OK(st);
        if (st) continue;
        float *x = NULL;
        int64_t n = 0;
        CHECK_OK(ac_audio_to_model_rate(&a, 32000, &x, &n));
        check_signal(file, cJSON_GetObjectItem(e, "audio_32k")->valuestring, x, n);
        free(x);
        ac_audio_free(&a);
    }

    printf("seeded signals at odd rates:\n");
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "resample")) {
        int orig = cJSON_GetObjectItem(e, "orig")->valueint, nw = cJSON_GetObjectItem(e, "new")->valueint;
        ac_npy in;
        golden_npy(cJSON_GetObjectItem(e, "input")->valuestring, &in);
        float *x = malloc(sizeof(float) * in.size);
        for (int64_t i = 0; i < in.size; i++) x[i] = (float)in.data[i];
        ac_resampler *r = NULL;
        CHECK_OK(ac_resampler_create(orig, nw, &r));
        if (r) {
            int64_t n = ac_resampler_out_len(r, in.size);
            float *y = malloc(sizeof(float) * (n > 0 ? n : 1));
            ac_resampler_run(r, x, in.size, y);
            char label[64];
            snprintf(label, sizeof label, "%d -> %d Hz", orig, nw);
            check_signal(label, cJSON_GetObjectItem(e, "output")->valuestring, y, n);
            free(y);
            ac_resampler_free(r);
        }
        free(x);
        ac_npy_free(&in);
    }

    printf("output lengths (torchaudio: ceil of float32(new*len/orig), capped by the conv output):\n");
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "resample_lengths")) {
        int orig = cJSON_GetObjectItem(e, "orig")->valueint, nw = cJSON_GetObjectItem(e, "new")->valueint;
        int64_t in_len = (int64_t)cJSON_GetObjectItem(e, "in_len")->valuedouble;
        int64_t want = (int64_t)cJSON_GetObjectItem(e, "out_len")->valuedouble;
        ac_resampler *r = NULL;
        CHECK_OK(ac_resampler_create(orig, nw, &r));
        if (!r) continue;
        int64_t got = ac_resampler_out_len(r, in_len);
        printf("  %6d -> %5d Hz, %9lld samples: %9lld (torchaudio %lld)\n", orig, nw, (long long)in_len,
               (long long)got, (long long)want);
        checks++;
        CHECK(got == want, "out_len(%d->%d, %lld) = %lld, torchaudio %lld", orig, nw, (long long)in_len,
              (long long)got, (long long)want);
        ac_resampler_free(r);
    }

    // The AVX2 path (eight blocks per vector) against the scalar loop (AC_RESAMPLE_SIMD=0), bit for bit, sign of
    // zero included: whole runs and ranges read from an exact-size partial history (ASan sees any overread), at
    // the common rates (every one takes the AVX2 path) and two coprime ones (the scalar loop both times), on
    // signals with runs of exact zeros of both signs.
    printf("vector path = scalar loop, bit for bit:\n");
    static const int pairs[][2] = {{44100, 32000}, {48000, 32000}, {16000, 32000}, {8000, 32000}, {22050, 32000},
                                   {96000, 32000}, {64000, 32000}, {192000, 32000}, {7919, 32000}, {44101, 32000},
                                   {32000, 44100}, {11025, 32000}, {32000, 8000}};
    uint64_t rs = 99;
    for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++) {
        const int orig = pairs[pi][0], nw = pairs[pi][1];
        ac_resampler *vec = NULL, *sca = NULL;
        CHECK_OK(ac_resampler_create(orig, nw, &vec));
        setenv("AC_RESAMPLE_SIMD", "0", 1);
        CHECK_OK(ac_resampler_create(orig, nw, &sca));
        unsetenv("AC_RESAMPLE_SIMD");
        if (!vec || !sca) continue;
        const int64_t lens[3] = {1, 777, 20011 + (int64_t)orig / 50};
        int same = 1;
        for (int li = 0; li < 3; li++) {
            const int64_t L = lens[li];
            float *x = malloc(sizeof(float) * L);
            for (int64_t i = 0; i < L; i++) {
                rs = rs * 6364136223846793005ull + 1442695040888963407ull;
                const double u = (double)(rs >> 11) / 9007199254740992.0;
                x[i] = (i / 300) % 3 == 1 ? 0.0f : (i / 300) % 3 == 2 ? -0.0f : (float)(u - 0.5);
            }
            const int64_t n = ac_resampler_out_len(vec, L);
            float *a = malloc(sizeof(float) * (n + 1)), *b = malloc(sizeof(float) * (n + 1));
            ac_resampler_run(vec, x, L, a);
            ac_resampler_run(sca, x, L, b);
            same &= memcmp(a, b, sizeof(float) * n) == 0;
            // ranges as a stream computes them: history from first_needed on, input length unknown
            for (int64_t o0 = 0; o0 < n; o0 += 3001) {  // 7001 outputs: partial blocks at both ends, whole groups
                const int64_t lo = ac_resampler_first_needed(vec, o0) > 0 ? ac_resampler_first_needed(vec, o0) : 0;
                const int64_t o1 = ac_resampler_ready(vec, o0, L) < o0 + 7001 ? ac_resampler_ready(vec, o0, L)
                                                                             : o0 + 7001;
                if (o1 <= o0 || lo >= L) continue;
                float *h = malloc(sizeof(float) * (size_t)(L - lo));  // exactly the history: ASan sees overreads
                memcpy(h, x + lo, sizeof(float) * (size_t)(L - lo));
                ac_resampler_run_range(vec, h, lo, INT64_MAX, o0, o1, a);
                same &= memcmp(a, b + o0, sizeof(float) * (size_t)(o1 - o0)) == 0;
                free(h);
            }
            free(a);
            free(b);
            free(x);
        }
        checks++;
        CHECK(same, "%d -> %d Hz: the vector path differs from the scalar loop", orig, nw);
        // ac_resampler_ready = the output-by-output scan it replaces
        int ready_ok = 1;
        for (int64_t avail = 0; avail < 3000; avail += 97)
            for (int64_t o = 0; o < 2000; o += 131) {
                int64_t want = o, lo, hi;
                for (;; want++) {
                    ac_resampler_window(vec, want, &lo, &hi);
                    if (hi > avail) break;
                }
                ready_ok &= ac_resampler_ready(vec, o, avail) == want;
            }
        checks++;
        CHECK(ready_ok, "%d -> %d Hz: ac_resampler_ready differs from the scan", orig, nw);
        printf("  %6d -> %5d Hz: identical%s\n", orig, nw, ready_ok ? ", ready = scan" : "");
        ac_resampler_free(vec);
        ac_resampler_free(sca);
    }

    // Same rate: the preprocessor does not resample, so samples pass through bit-exactly (then channel mean).
    float inter[6] = {0.25f, -0.5f, 1.0f, 0.125f, -1.0f, 0.75f};
    ac_audio a;
    CHECK_OK(ac_audio_from_interleaved("mem", inter, 3, 2, 32000, &a));
    float *y = NULL;
    int64_t n = 0;
    CHECK_OK(ac_audio_to_model_rate(&a, 32000, &y, &n));
    checks++;
    CHECK(n == 3 && y && y[0] == -0.125f && y[1] == 0.5625f && y[2] == -0.125f, "same-rate mean is wrong");
    free(y);
    ac_audio_free(&a);

    // Bad arguments are reported, not crashed on.
    ac_resampler *r = NULL;
    checks++;
    CHECK(ac_resampler_create(0, 32000, &r) == AC_ERR_INVALID_ARG && r == NULL, "rate 0 accepted");
    return test_finish("test_resample", checks);
}
