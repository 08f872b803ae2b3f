// What the tests/emu programs share: the seeded generator (define EMU_SEED before including to change the
// sequence), the EXPECT counter and compare_rows: rows that must not be written stay NaN, rows that must be are
// all written and within tol as max |emu - ref| / max |ref|, except elements whose reference is NaN (no defined
// value: an out-of-range token's embedding); each kind's worst share of its budget is kept in g_worst[kind].
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>

#ifndef EMU_SEED
#define EMU_SEED 12345
#endif

static uint64_t g_rng = EMU_SEED;
static inline float frand() {  // uniform in [-1, 1)
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static inline int irand(int n) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((g_rng >> 33) % (uint64_t)n);
}

static int g_fail, g_checks;
static double g_worst[8];
#define EXPECT(cond, ...)                                   \
    do {                                                    \
        g_checks++;                                         \
        if (!(cond)) {                                      \
            fprintf(stderr, "FAIL %s: ", #cond);            \
            fprintf(stderr, __VA_ARGS__);                   \
            fprintf(stderr, "\n");                          \
            g_fail++;                                       \
        }                                                   \
    } while (0)

static inline void compare_rows(const char *what, int kind, const float *ref, const float *got, const int *written,
                                int rows, int D, double tol) {
    double md = 0, mr = 0;
    int bad_nan = 0, unwritten = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < D; i++) {
            const float g = got[(size_t)r * D + i];
            if (!written[r]) {
                if (!std::isnan(g)) bad_nan++;
                continue;
            }
            if (std::isnan(g) && !std::isnan(ref[(size_t)r * D + i])) {
                unwritten++;
                continue;
            }
            if (std::isnan(ref[(size_t)r * D + i])) continue;
            md = fmax(md, fabs((double)g - ref[(size_t)r * D + i]));
            mr = fmax(mr, fabs((double)ref[(size_t)r * D + i]));
        }
    const double rel = mr > 0 ? md / mr : md;
    EXPECT(!bad_nan, "%s: %d elements written outside the live rows", what, bad_nan);
    EXPECT(!unwritten, "%s: %d elements of live rows not written (NaN)", what, unwritten);
    EXPECT(rel <= tol, "%s: rel error %.3g > %.3g (%.0f %% of the budget)", what, rel, tol, 100 * rel / tol);
    if (rel / tol > g_worst[kind]) g_worst[kind] = rel / tol;
}
