// Test helpers (see testutil.h).
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int g_failures = 0;

int test_finish(const char *name, int checks_run) {
    printf("%s: %d checks, %d failed\n", name, checks_run, g_failures);
    return g_failures ? 1 : 0;
}

const char *data_path(const char *rel) {
    static _Thread_local char buf[4][4096];
    static _Thread_local int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", AC_TEST_DATA, rel);
    return buf[k];
}

cJSON *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    cJSON *j = NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) {
        s[n] = '\0';
        j = cJSON_Parse(s);
    }
    free(s);
    fclose(f);
    return j;
}

cJSON *golden_manifest(void) {
    static cJSON *m = NULL;
    if (m) return m;
    const char *p = data_path("golden/manifest.json");
    m = read_json_file(p);
    if (!m) {
        fprintf(stderr, "FAIL: cannot read %s (regenerate with tools/make_goldens.py)\n", p);
        exit(1);
    }
    return m;
}

void golden_npy(const char *name, ac_npy *out) {
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s", name);
    if (ac_npy_read(data_path(rel), out) != AC_OK) {
        fprintf(stderr, "FAIL: %s\n", ac_last_error());
        exit(1);
    }
}

double snr_db(const double *ref, const float *got, int64_t n) {
    double s = 0, e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        s += ref[i] * ref[i];
        e += d * d;
    }
    if (e == 0) return INFINITY;
    if (s == 0) return -INFINITY;
    return 10.0 * log10(s / e);
}

int report(const char *label, double value, double budget, int higher_is_better) {
    int ok = higher_is_better ? value >= budget : value <= budget;
    if (higher_is_better)
        printf("  %-52s %10.3g dB  (floor %.3g dB, margin %+.1f dB)%s\n", label, value, budget, value - budget,
               ok ? "" : "  <-- FAIL");
    else
        printf("  %-52s %10.3g     (budget %.3g, %5.1f%% of budget)%s\n", label, value, budget,
               budget > 0 ? 100.0 * value / budget : 0.0, ok ? "" : "  <-- FAIL");
    return ok;
}
