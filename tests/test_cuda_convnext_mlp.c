// ConvNeXt block MLP on GPU (kernels/convnext_mlp*.cu): x += gamma * (GELU(h W1^T + b1) W2^T + b2).
// Part 1, host only (runs everywhere): the launchers' argument checks, which must fail before any CUDA call,
// the workspace size and which path may run what. Part 2, GPU (exits 77 without one): FP32 (unfused) and, for
// BF16, every eligible path (mma at C in {96,192}, split at {384,768}, wmma at {96,192,384,768}, unfused
// everywhere) and the auto choice,
// C in {8,16,24,32,96,128,192,384,768} (AC_TEST_MLP_WIDTHS=8,96,128: those only) x N in {1,7,63,64,65,1000,4099},
// against a double-precision evaluation
// (host/model.c's order of operations) of the same fp16-representable inputs (the BF16 mode's MLP operands are
// fp16: kernels/convnext_mlp_operand.cuh), error as a share of the
// per-element budget of tests/tolerances.h; x has NaN guard rows on both sides that must stay untouched, h
// NaN rows past N, the workspace NaN-filled before each run.
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "../kernels/convnext_mlp.h"
#include "../kernels/device.h"
#include "testutil.h"

static int checks = 0;

static uint64_t g_rng = 20261127;
static float frand(void) {  // xorshift64*, uniform in [-1, 1)
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

// n values uniform in [-scale, scale), rounded to fp16 so that the fp32 and BF16-mode runs see the same numbers.
static void fill_op(float *f, uint16_t *b, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        b[i] = ac_f32_to_f16(frand() * scale);
        f[i] = ac_f16_to_f32(b[i]);
    }
}

// host/fp16.h, which the tests and the emulators round with: every fp16 value survives f16 -> f32 -> f16, each
// midpoint between neighbours goes to the even one and anything nearer to a neighbour to it, and values past
// the range saturate (CUDA's __float2half_rn would give inf there; the kernels saturate first)
static void fp16_checks(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const uint16_t b = (uint16_t)h;
        const float f = ac_f16_to_f32(b);
        if ((b & 0x7c00) == 0x7c00) {  // inf, NaN
            bad += (b & 0x3ff) ? !isnan(f) || !(ac_f32_to_f16(f) & 0x3ff) : !isinf(f);
            continue;
        }
        bad += ac_f32_to_f16(f) != b;
        if ((b & 0x7fff) == 0x7bff) continue;  // 65504: no finite neighbour above
        const float next = ac_f16_to_f32((uint16_t)(b + 1)), mid = 0.5f * (f + next);  // mid is exact in fp32
        const uint16_t even = (b & 1) ? (uint16_t)(b + 1) : b;
        bad += ac_f32_to_f16(mid) != even;
        bad += ac_f32_to_f16(nextafterf(mid, 0.f)) != b;
        bad += ac_f32_to_f16(nextafterf(mid, (b & 0x8000) ? -INFINITY : INFINITY)) != (uint16_t)(b + 1);
    }
    bad += ac_f32_to_f16(65519.f) != 0x7bff || ac_f32_to_f16(65520.f) != 0x7bff || ac_f32_to_f16(1e30f) != 0x7bff;
    bad += ac_f32_to_f16(-INFINITY) != 0xfbff || ac_f32_to_f16(1e-9f) != 0 || ac_f32_to_f16(-1e-9f) != 0x8000;
    bad += ac_f16_to_f32(0x0001) != ldexpf(1.f, -24) || ac_f16_to_f32(0x3c00) != 1.f || ac_f16_to_f32(0xc000) != -2.f;
    checks++;
    CHECK(bad == 0, "host fp16 conversion: %d wrong results", bad);
}

static void host_checks(void) {
    fp16_checks();
    void *p = (void *)(uintptr_t)256;  // never dereferenced: each call below must fail before touching it
    const float *fp = (const float *)p;
    float *xp = (float *)p;
    const size_t ws = ac_convnext_mlp_workspace(AC_PREC_BF16, 100, 96);
    struct {
        const char *what;
        ac_precision prec;
        int64_t N;
        int C;
        int null_arg;  // 0: none; 1..7: h, w1, b1, w2, b2, gamma, x
        size_t ws;
    } bad[] = {
        {"unknown precision", (ac_precision)7, 100, 96, 0, ws},
        {"N < 0", AC_PREC_BF16, -1, 96, 0, ws},
        {"C = 0", AC_PREC_BF16, 100, 0, 0, ws},
        {"C % 8 != 0", AC_PREC_BF16, 100, 100, 0, ws},
        {"C = 12", AC_PREC_FP32, 100, 12, 0, ws},
        {"C too large", AC_PREC_FP32, 100, 1 << 20, 0, (size_t)1 << 40},
        {"h NULL", AC_PREC_BF16, 100, 96, 1, ws},
        {"pwconv1_w NULL", AC_PREC_BF16, 100, 96, 2, ws},
        {"pwconv1_b NULL", AC_PREC_FP32, 100, 96, 3, ws},
        {"pwconv2_w NULL", AC_PREC_BF16, 100, 96, 4, ws},
        {"pwconv2_b NULL", AC_PREC_BF16, 100, 96, 5, ws},
        {"gamma NULL", AC_PREC_FP32, 100, 96, 6, ws},
        {"x NULL", AC_PREC_BF16, 100, 96, 7, ws},
        {"workspace too small", AC_PREC_BF16, 100, 96, 0, ws - 1},
        {"workspace too small (fp32)", AC_PREC_FP32, 100, 96, 0, ac_convnext_mlp_workspace(AC_PREC_FP32, 100, 96) - 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const void *a[8] = {NULL, p, p, p, p, p, p, p};
        if (bad[i].null_arg) a[bad[i].null_arg] = NULL;
        for (int unfused = 0; unfused < 2; unfused++) {
            ac_status st = (unfused ? ac_convnext_mlp_unfused : ac_convnext_mlp)(
                bad[i].prec, bad[i].N, bad[i].C, a[1], a[2], (const float *)a[3], a[4], (const float *)a[5],
                (const float *)a[6], (float *)a[7], p, bad[i].ws, NULL);
            checks++;
            CHECK(st == AC_ERR_INVALID_ARG, "%s (%s): got %s", bad[i].what, unfused ? "unfused" : "fused",
                  ac_status_name(st));
            CHECK(strstr(ac_last_error(), "hint:") != NULL, "%s: message without a hint: %s", bad[i].what,
                  ac_last_error());
        }
    }
    // A NULL workspace is an error where one is needed ...
    checks++;
    CHECK(ac_convnext_mlp(AC_PREC_BF16, 100, 96, p, p, fp, p, fp, fp, xp, NULL, ws, NULL) == AC_ERR_INVALID_ARG,
          "NULL workspace accepted");
    // ... and so is one the split path could not read back with 16-byte copies
    checks++;
    CHECK(ac_convnext_mlp(AC_PREC_BF16, 100, 384, p, p, fp, p, fp, fp, xp, (char *)p + 8,
                          ac_convnext_mlp_workspace(AC_PREC_BF16, 100, 384), NULL) == AC_ERR_INVALID_ARG &&
              strstr(ac_last_error(), "aligned"),
          "misaligned workspace accepted: %s", ac_last_error());
    // ... and N == 0 is a no-op that needs nothing (returns before any CUDA call, so it passes without a GPU).
    checks++;
    CHECK(ac_convnext_mlp(AC_PREC_BF16, 0, 96, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL) == AC_OK,
          "N = 0: %s", ac_last_error());
    checks++;
    CHECK(ac_convnext_mlp_workspace(AC_PREC_BF16, 0, 96) == 0, "N = 0 needs no workspace");

    // Workspace: grows with N up to a cap, then stays (the unfused path works in row chunks).
    checks += 4;
    CHECK(ac_convnext_mlp_workspace(AC_PREC_FP32, 1, 96) == 20 * 96, "fp32 bytes per row");
    CHECK(ac_convnext_mlp_workspace(AC_PREC_BF16, 1, 96) == 28 * 96, "BF16-mode bytes per row");
    size_t big = ac_convnext_mlp_workspace(AC_PREC_BF16, (int64_t)1 << 40, 768);
    CHECK(big <= ((size_t)64 << 20) && big >= ((size_t)32 << 20), "capped workspace %zu", big);
    CHECK(ac_convnext_mlp_workspace(AC_PREC_FP32, (int64_t)1 << 40, 8) <= ((size_t)64 << 20), "cap at small C");

    // Which path may run what: precision, widths, alignment (h/W1/W2 16 bytes for cp.async; x 8 bytes for mma).
    const void *al = (const void *)(uintptr_t)4096, *mis = (const void *)(uintptr_t)4104;
    const float *xal = (const float *)al, *x4 = (const float *)(uintptr_t)4100;
    int C_fused[] = {96, 192, 384, 768}, C_other[] = {8, 16, 24, 32, 64, 128, 1536};
    for (int i = 0; i < 4; i++) {
        const int C = C_fused[i], mma = C <= 192;
        checks += 9;
        CHECK(ac_convnext_mlp_eligible(AC_MLP_SPLIT, AC_PREC_BF16, C, al, al, al, xal) == !mma, "C = %d split", C);
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_SPLIT, AC_PREC_BF16, C, al, al, mis, xal), "misaligned W2 split");
        CHECK(ac_convnext_mlp_eligible(AC_MLP_WMMA, AC_PREC_BF16, C, al, al, al, xal), "C = %d wmma", C);
        CHECK(ac_convnext_mlp_eligible(AC_MLP_MMA, AC_PREC_BF16, C, al, al, al, xal) == mma, "C = %d mma", C);
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_WMMA, AC_PREC_FP32, C, al, al, al, xal), "fp32 never fused");
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_MMA, AC_PREC_FP32, C, al, al, al, xal), "fp32 never fused");
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_WMMA, AC_PREC_BF16, C, al, mis, al, xal), "misaligned W1 fused");
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_MMA, AC_PREC_BF16, C, al, al, al, x4), "x 4-byte aligned for mma");
        CHECK(ac_convnext_mlp_eligible(AC_MLP_UNFUSED, AC_PREC_FP32, C, mis, mis, mis, x4), "unfused takes all");
    }
    for (int i = 0; i < 7; i++) {
        checks += 3;
        CHECK(ac_convnext_mlp_eligible(AC_MLP_SPLIT, AC_PREC_BF16, C_other[i], al, al, al, xal) ==
                  (C_other[i] % 128 == 0), "C = %d split", C_other[i]);
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_WMMA, AC_PREC_BF16, C_other[i], al, al, al, xal), "C = %d wmma",
              C_other[i]);
        CHECK(!ac_convnext_mlp_eligible(AC_MLP_MMA, AC_PREC_BF16, C_other[i], al, al, al, xal), "C = %d mma",
              C_other[i]);
    }
    checks += 2;
    CHECK(!strcmp(ac_mlp_path_name(AC_MLP_MMA), "mma") && !strcmp(ac_mlp_path_name(AC_MLP_UNFUSED), "unfused"),
          "path names");
    CHECK(ac_convnext_mlp_with(AC_MLP_WMMA, AC_PREC_BF16, 100, 24, p, p, fp, p, fp, fp, xp, p, ws, NULL) ==
              AC_ERR_INVALID_ARG, "wmma at C = 24 refused, not silently unfused");
}

// Double-precision evaluation of rows [0, N) of the sample set (host/model.c's order), with per-element budgets.
typedef struct {
    int C;
    int64_t N;
    float *h, *w1, *b1, *w2, *b2, *gamma, *x0;  // fp32 values (fp16-representable for h, w1, w2)
    uint16_t *hb, *w1b, *w2b;
} problem;

// want[c], budget[c] for one row (FP32 and BF16 budgets)
static void reference_row(const problem *P, int64_t r, double *g, double *pj, double *want, double *bud32,
                          double *bud16) {
    const int C = P->C, H = 4 * C;
    const float *h = P->h + r * C;
    for (int j = 0; j < H; j++) {
        double s = P->b1[j], a = fabs(P->b1[j]);
        const float *w = P->w1 + (size_t)j * C;
        for (int k = 0; k < C; k++) s += (double)h[k] * w[k], a += fabs((double)h[k] * w[k]);
        g[j] = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
        pj[j] = 1.13 * a;
    }
    const double u32 = ldexp(1.0, -24), u16 = ldexp(1.0, -11);  // fp16 unit roundoff
    for (int c = 0; c < C; c++) {
        const float *w = P->w2 + (size_t)c * H;
        double y = P->b2[c], abs_t = fabs(P->b2[c]), sq_t = 0, sq_p = 0;
        for (int j = 0; j < H; j++) {
            const double t = g[j] * w[j], q = w[j] * pj[j];
            y += t, abs_t += fabs(t), sq_t += t * t, sq_p += q * q;
        }
        const double gm = fabs(P->gamma[c]), x0 = P->x0[r * C + c];
        want[c] = x0 + P->gamma[c] * y;
        const double tail = 2.0 * u32 * (fabs(x0) + gm * fabs(y));
        const double e32 = TOL_MLP_FP32_EPS * u32 * (abs_t + sqrt(sq_p));
        bud32[c] = gm * e32 + tail;
        bud16[c] = gm * (TOL_MLP_OP_SIGMAS * u16 * sqrt(sq_t) + e32) + tail;
    }
}

#define GUARD 5  // NaN rows of x before and after the N rows

static int g_device_errors = 0;

// Guard value: a NaN with a payload; GPU arithmetic on a NaN yields the canonical 0x7fffffff, so a guard that
// was read-modify-written (x += NaN) shows up as changed bits.
#define GUARD_BITS 0x7fc0beefu

// Runs one (precision, path) on the device copy of P and checks the rows in `rows`.
static void run_case(const problem *P, ac_precision prec, ac_mlp_path path, const int64_t *rows, int nrows,
                     double *const *want, double *const *bud32, double *const *bud16, cudaStream_t stream) {
    const int C = P->C, H = 4 * C;
    const int64_t N = P->N;
    const size_t es = prec == AC_PREC_BF16 ? 2 : 4;
    const size_t hrows = (size_t)N + 3;  // NaN rows past N: reading them must not matter
    void *d_h = NULL, *d_w1 = NULL, *d_w2 = NULL, *d_ws = NULL;
    float *d_b1 = NULL, *d_b2 = NULL, *d_g = NULL, *d_x = NULL;
    const size_t xn = (size_t)(N + 2 * GUARD) * C;
    const size_t ws = ac_convnext_mlp_workspace(prec, N, C);
    float *x = malloc(sizeof(float) * xn);
    unsigned char *hbuf = malloc(hrows * C * es);
    if (!x || !hbuf) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    // x: NaN guards | x0 | NaN guards
    const uint32_t gbits = GUARD_BITS;
    for (size_t i = 0; i < xn; i++) memcpy(&x[i], &gbits, 4);
    memcpy(x + (size_t)GUARD * C, P->x0, sizeof(float) * N * C);
    if (prec == AC_PREC_BF16) {
        uint16_t *hb = (uint16_t *)hbuf;
        memcpy(hb, P->hb, 2 * (size_t)N * C);
        for (size_t i = (size_t)N * C; i < hrows * C; i++) hb[i] = 0x7e00;  // fp16 NaN
    } else {
        float *hf = (float *)hbuf;
        memcpy(hf, P->h, 4 * (size_t)N * C);
        for (size_t i = (size_t)N * C; i < hrows * C; i++) hf[i] = NAN;
    }
    cudaError_t err = cudaSuccess;
#define ALLOC(p, n) \
    if (err == cudaSuccess) err = cudaMalloc((void **)&(p), (n))
    ALLOC(d_h, hrows * C * es);
    ALLOC(d_w1, (size_t)H * C * es);
    ALLOC(d_w2, (size_t)H * C * es);
    ALLOC(d_b1, sizeof(float) * H);
    ALLOC(d_b2, sizeof(float) * C);
    ALLOC(d_g, sizeof(float) * C);
    ALLOC(d_x, sizeof(float) * xn);
    if (ws) ALLOC(d_ws, ws);
#undef ALLOC
    if (err == cudaSuccess) err = cudaMemcpy(d_h, hbuf, hrows * C * es, cudaMemcpyHostToDevice);
    if (err == cudaSuccess)
        err = cudaMemcpy(d_w1, prec == AC_PREC_BF16 ? (const void *)P->w1b : (const void *)P->w1, (size_t)H * C * es,
                         cudaMemcpyHostToDevice);
    if (err == cudaSuccess)
        err = cudaMemcpy(d_w2, prec == AC_PREC_BF16 ? (const void *)P->w2b : (const void *)P->w2, (size_t)H * C * es,
                         cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(d_b1, P->b1, sizeof(float) * H, cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(d_b2, P->b2, sizeof(float) * C, cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(d_g, P->gamma, sizeof(float) * C, cudaMemcpyHostToDevice);
    if (err == cudaSuccess) err = cudaMemcpy(d_x, x, sizeof(float) * xn, cudaMemcpyHostToDevice);
    if (err == cudaSuccess && ws) err = cudaMemset(d_ws, 0xff, ws);  // NaN everywhere
    checks++;
    CHECK(err == cudaSuccess, "setup C=%d N=%lld: %s", C, (long long)N, cudaGetErrorString(err));
    if (err == cudaSuccess) {
        ac_status st = ac_convnext_mlp_with(path, prec, N, C, d_h, d_w1, d_b1, d_w2, d_b2, d_g,
                                            d_x + (size_t)GUARD * C, d_ws, ws, stream);
        checks++;
        CHECK(st == AC_OK, "C=%d N=%lld: %s", C, (long long)N, ac_last_error());
        err = cudaStreamSynchronize(stream);
        if (err == cudaSuccess) err = cudaMemcpy(x, d_x, sizeof(float) * xn, cudaMemcpyDeviceToHost);
        checks++;
        CHECK(err == cudaSuccess, "run C=%d N=%lld: %s", C, (long long)N, cudaGetErrorString(err));
        if (err != cudaSuccess) g_device_errors++;
        if (st == AC_OK && err == cudaSuccess) {
            int guard_bad = 0;
            for (size_t i = 0; i < (size_t)GUARD * C; i++)
                guard_bad += memcmp(&x[i], &gbits, 4) != 0, guard_bad += memcmp(&x[xn - 1 - i], &gbits, 4) != 0;
            int all_nonfinite = 0;  // every row, checked or not, must have been computed from finite inputs
            for (size_t i = (size_t)GUARD * C; i < (size_t)(GUARD + N) * C; i++) all_nonfinite += !isfinite(x[i]);
            checks++;
            CHECK(all_nonfinite == 0, "C=%d N=%lld: %d non-finite elements among all N rows", C, (long long)N,
                  all_nonfinite);
            checks++;
            CHECK(guard_bad == 0, "C=%d N=%lld: %d guard elements of x written", C, (long long)N, guard_bad);
            double worst = 0;
            int64_t wr = -1;
            int wc = -1, nonfinite = 0;
            for (int i = 0; i < nrows; i++) {
                const float *xr = x + (size_t)(GUARD + rows[i]) * C;
                const double *b = prec == AC_PREC_BF16 ? bud16[i] : bud32[i];
                for (int c = 0; c < C; c++) {
                    if (!isfinite(xr[c])) {
                        nonfinite++;
                        continue;
                    }
                    const double share = fabs(xr[c] - want[i][c]) / b[c];
                    if (share > worst) worst = share, wr = rows[i], wc = c;
                }
            }
            char label[128];
            const char *alt = getenv("AC_MLP_MMA_ALT");
            const ac_mlp_path ran = path == AC_MLP_AUTO ? ac_convnext_mlp_choose(prec, C, d_h, d_w1, d_w2, d_x) : path;
            snprintf(label, sizeof label, "%s %s%s%s C=%d N=%lld (%d rows checked)",
                     prec == AC_PREC_BF16 ? "bf16" : "fp32", path == AC_MLP_AUTO ? "auto=" : "", ac_mlp_path_name(ran),
                     ran == AC_MLP_MMA && alt && alt[0] == '1' ? "_alt" : "", C, (long long)N, nrows);
            checks += 2;
            CHECK(nonfinite == 0, "%s: %d non-finite outputs", label, nonfinite);
            if (!report(label, worst, 1.0, 0))
                CHECK(0, "%s: worst element row %lld channel %d", label, (long long)wr, wc);
        }
    }
    cudaFree(d_h), cudaFree(d_w1), cudaFree(d_w2), cudaFree(d_b1), cudaFree(d_b2), cudaFree(d_g), cudaFree(d_x);
    if (d_ws) cudaFree(d_ws);
    free(x);
    free(hbuf);
}

// ac_convnext_mlp_weight: the fp16 copy bit for bit as the host rounds (normals, ties, subnormals, the edge of
// the range), and a weight beyond fp16's range or a NaN refused by name
static void weight_checks(cudaStream_t stream) {
    float w[] = {0.f,           -0.f,          1.f,     -1.0009765625f, 1.00048828125f, 1.00146484375f, 3.1415927f,
                 65504.f,       -65519.f,      6.1e-5f, 5.9604645e-8f,  2.9802322e-8f,  -3.0e-8f,       1e-7f,
                 1.1920929e-7f, 0.0123456789f, -42.4242f};
    const int n = (int)(sizeof w / sizeof w[0]);
    float *d_w = NULL;
    uint16_t *d_op = NULL, got[sizeof w / sizeof w[0]];
    cudaError_t err = cudaMalloc((void **)&d_w, sizeof w);
    if (err == cudaSuccess) err = cudaMalloc((void **)&d_op, sizeof got);
    if (err == cudaSuccess) err = cudaMemcpy(d_w, w, sizeof w, cudaMemcpyHostToDevice);
    checks++;
    CHECK(err == cudaSuccess, "weight setup: %s", cudaGetErrorString(err));
    if (err != cudaSuccess) {
        g_device_errors++;
        return;
    }
    ac_status st = ac_convnext_mlp_weight("test.pwconv1.weight", d_w, n, d_op, stream);
    checks++;
    CHECK(st == AC_OK, "weight conversion: %s", ac_last_error());
    err = cudaMemcpy(got, d_op, sizeof got, cudaMemcpyDeviceToHost);
    int bad = 0;
    for (int i = 0; i < n && err == cudaSuccess; i++)
        if (got[i] != ac_f32_to_f16(w[i])) {
            bad++;
            fprintf(stderr, "  weight %.9g: device fp16 0x%04x, host 0x%04x\n", w[i], got[i], ac_f32_to_f16(w[i]));
        }
    checks++;
    CHECK(err == cudaSuccess && bad == 0, "fp16 weight copy: %d of %d differ from the host's rounding (%s)", bad, n,
          cudaGetErrorString(err));
    const float beyond[] = {65520.f, NAN};  // 65520 rounds to inf in fp16
    for (int k = 0; k < 2; k++) {
        w[5] = beyond[k];
        err = cudaMemcpy(d_w, w, sizeof w, cudaMemcpyHostToDevice);
        st = err == cudaSuccess ? ac_convnext_mlp_weight("test.pwconv2.weight", d_w, n, d_op, stream) : AC_OK;
        checks++;
        CHECK(err == cudaSuccess && st == AC_ERR_INVALID_ARG && strstr(ac_last_error(), "test.pwconv2.weight"),
              "a weight of %g must be refused by name (status %d: %s)", beyond[k], (int)st, ac_last_error());
    }
    checks++;
    CHECK(ac_convnext_mlp_weight("w", NULL, n, d_op, stream) == AC_ERR_INVALID_ARG, "NULL weight");
    cudaFree(d_w), cudaFree(d_op);
}

// The reference is O(rows * 8 C^2) in double: every row up to this many multiply-adds, then a sample
// (the first and last 40 rows, where tile edges are, and an even spread in between).
#define REF_MACS 5.0e8

static void gpu_checks(cudaStream_t stream) {
    const int Cs[] = {8, 16, 24, 32, 96, 128, 192, 384, 768};
    const int64_t Ns[] = {1, 7, 63, 64, 65, 1000, 4099};
    // AC_TEST_SMALL=1 (the CPU stand-in runtime, tests/emu-runtime): still a partial tile, one and two full
    // 64-row tiles plus a partial one, and a 128-row tile plus a partial one, at every width
    const int64_t Ns_small[] = {7, 129, 130};
    const char *small = getenv("AC_TEST_SMALL");
    const int is_small = small && small[0] == '1';
    const int64_t *Nv = is_small ? Ns_small : Ns;
    const size_t nN = is_small ? sizeof Ns_small / sizeof Ns_small[0] : sizeof Ns / sizeof Ns[0];
    // AC_TEST_MLP_WIDTHS=8,96,128 (CI's quick emulated run): only these widths
    const char *widths = getenv("AC_TEST_MLP_WIDTHS");
    for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++)
        for (size_t ni = 0; ni < nN; ni++) {
            const int C = Cs[ci], H = 4 * C;
            if (widths) {
                char key[16], list[128];
                snprintf(key, sizeof key, ",%d,", C);
                snprintf(list, sizeof list, ",%s,", widths);
                if (!strstr(list, key)) continue;
            }
            const int64_t N = Nv[ni];
            problem P = {.C = C, .N = N};
            const size_t nh = (size_t)N * C, nw = (size_t)H * C;
            P.h = malloc(4 * nh), P.hb = malloc(2 * nh), P.w1 = malloc(4 * nw), P.w1b = malloc(2 * nw);
            P.w2 = malloc(4 * nw), P.w2b = malloc(2 * nw), P.b1 = malloc(4 * (size_t)H), P.b2 = malloc(4 * (size_t)C);
            P.gamma = malloc(4 * (size_t)C), P.x0 = malloc(4 * nh);
            // Scales of a trained block: h a LayerNorm output, pre-activations O(1), layer scale 0.05..1.
            fill_op(P.h, P.hb, nh, 1.7f);
            fill_op(P.w1, P.w1b, nw, 1.7f / sqrtf((float)C));
            fill_op(P.w2, P.w2b, nw, 1.7f / sqrtf((float)H));
            for (int j = 0; j < H; j++) P.b1[j] = 0.5f * frand();
            for (int c = 0; c < C; c++) {
                P.b2[c] = 0.2f * frand();
                const float g = frand();
                P.gamma[c] = (g < 0 ? -0.05f : 0.05f) + 0.95f * g;
            }
            for (size_t i = 0; i < nh; i++) P.x0[i] = frand();

            const double row_macs = 8.0 * C * C;
            int nrows = (int)(N * row_macs <= REF_MACS ? N : REF_MACS / row_macs);
            if (nrows < 80) nrows = N < 80 ? (int)N : 80;
            int64_t *rows = malloc(sizeof(int64_t) * nrows);
            if (nrows == N)
                for (int i = 0; i < nrows; i++) rows[i] = i;
            else {
                for (int i = 0; i < 40; i++) rows[i] = i, rows[nrows - 1 - i] = N - 1 - i;
                for (int i = 40; i < nrows - 40; i++) rows[i] = 40 + (int64_t)(i - 40) * (N - 80) / (nrows - 80);
            }
            double **want = malloc(sizeof(double *) * nrows), **b32 = malloc(sizeof(double *) * nrows),
                   **b16 = malloc(sizeof(double *) * nrows);
            double *g = malloc(sizeof(double) * H), *pj = malloc(sizeof(double) * H);
            for (int i = 0; i < nrows; i++) {
                want[i] = malloc(sizeof(double) * C), b32[i] = malloc(sizeof(double) * C);
                b16[i] = malloc(sizeof(double) * C);
                reference_row(&P, rows[i], g, pj, want[i], b32[i], b16[i]);
            }
            run_case(&P, AC_PREC_FP32, AC_MLP_AUTO, rows, nrows, want, b32, b16, stream);
            // every BF16 path where it is eligible (cudaMalloc'd pointers: 256-byte aligned), then the auto choice
            const void *al = (const void *)(uintptr_t)256;
            // (mma twice: its default tile shape, then AC_MLP_MMA_ALT=1's 64-row CTAs)
            const ac_mlp_path paths[] = {AC_MLP_MMA, AC_MLP_MMA, AC_MLP_SPLIT, AC_MLP_WMMA, AC_MLP_UNFUSED, AC_MLP_AUTO};
            for (int p = 0; p < 6 && !g_device_errors; p++) {
                setenv("AC_MLP_MMA_ALT", p == 1 ? "1" : "0", 1);
                if (paths[p] == AC_MLP_AUTO ||
                    ac_convnext_mlp_eligible(paths[p], AC_PREC_BF16, C, al, al, al, (const float *)al))
                    run_case(&P, AC_PREC_BF16, paths[p], rows, nrows, want, b32, b16, stream);
            }
            for (int i = 0; i < nrows; i++) free(want[i]), free(b32[i]), free(b16[i]);
            free(want), free(b32), free(b16), free(g), free(pj), free(rows);
            free(P.h), free(P.hb), free(P.w1), free(P.w1b), free(P.w2), free(P.w2b), free(P.b1), free(P.b2);
            free(P.gamma), free(P.x0);
            if (g_device_errors) {
                fprintf(stderr, "FAIL: device error, stopping (a sticky CUDA error poisons later cases)\n");
                return;
            }
        }
}

int main(void) {
    host_checks();
    int n = 0;
    if (ac_cuda_device_count(&n) != AC_OK) {
        fprintf(stderr, "FAIL: device count: %s\n", ac_last_error());
        return 1;
    }
    if (n == 0) {
        if (g_failures) return test_finish("test_cuda_convnext_mlp", checks);
        printf("test_cuda_convnext_mlp: host-side checks passed (%d); no CUDA device: GPU part skipped\n", checks);
        return AC_SKIP;
    }
    cudaStream_t stream;
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
        fprintf(stderr, "FAIL: cudaStreamCreate\n");
        return 1;
    }
    weight_checks(stream);
    if (!g_device_errors) gpu_checks(stream);
    cudaStreamDestroy(stream);
    return test_finish("test_cuda_convnext_mlp", checks);
}
