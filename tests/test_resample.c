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
