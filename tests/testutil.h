// Test helpers: golden manifest access, comparisons that report error as a share of the budget, check macros.
#ifndef AC_TESTUTIL_H
#define AC_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "ac.h"
#include "npy.h"
#include "tolerances.h"

#define AC_SKIP 77

extern int g_failures;

#define CHECK(cond, ...)                                                                                         \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                      \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fprintf(stderr, "\n");                                                                               \
            g_failures++;                                                                                        \
        }                                                                                                        \
    } while (0)

#define CHECK_OK(expr)                                                                                           \
    do {                                                                                                         \
        ac_status st_ = (expr);                                                                                  \
        CHECK(st_ == AC_OK, "%s -> %s: %s", #expr, ac_status_name(st_), ac_last_error());                         \
    } while (0)

// Ends a test program: prints "N passed, M failed" style summary and returns the exit code.
int test_finish(const char *name, int checks_run);

// Golden data: tests/data/golden/manifest.json (made by tools/make_goldens.py from the upstream code).
cJSON *golden_manifest(void);
// Loads golden/<name> (a .npy); aborts the test (exit 1) if missing, since goldens are committed.
void golden_npy(const char *name, ac_npy *out);
// Parses a JSON file; NULL if it is missing or invalid.
cJSON *read_json_file(const char *path);
// Full path of tests/data/<rel>.
const char *data_path(const char *rel);

// SNR of `got` against `ref` in dB (inf if identical).
double snr_db(const double *ref, const float *got, int64_t n);
// Reports "label: value / budget = share%" and returns whether it is within budget.
int report(const char *label, double value, double budget, int higher_is_better);

#endif
