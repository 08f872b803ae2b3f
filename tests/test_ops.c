// CPU reference ops (host/ref/ref_ops.c) against straightforward double-precision versions, on seeded random
// inputs and odd shapes: erf/GELU accuracy, patch conv, depthwise conv, LayerNorm, both linears, attention, and
// the decoder linear's batch invariance (a row's result is bit-identical whatever the number of rows), and the
// ConvNeXt MLP, whole and in chunks of rows.
#include "ref/ref_ops.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;
static uint64_t g_rng = 12345;
static float frand(void) {  // xorshift64*, uniform in [-1, 1)
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *rnd(size_t n) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    return x;
}
// max |got - want| / max(max|want|, 1e-30)
static double rel_err(const float *got, const double *want, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(got[i] - want[i])), m = fmax(m, fabs(want[i]));
    return e / fmax(m, 1e-30);
}

int main(void) {
    // erf: the rational approximation GELU uses, over [-6, 6] in steps of 1e-4
    double e = 0;
    for (double v = -6; v <= 6; v += 1e-4) e = fmax(e, fabs((double)ref_erf((float)v) - erf((double)(float)v)));
    checks++;
    CHECK(report("erf max abs error over [-6, 6]", e, TOL_ERF_ABS, 0), "erf");
    float g[7] = {-8.0f, -3.0f, -0.5f, 0.0f, 0.5f, 3.0f, 8.0f};
    double gw[7];
    for (int i = 0; i < 7; i++) gw[i] = 0.5 * g[i] * (1.0 + erf(g[i] / sqrt(2.0)));
    ref_gelu_erf(g, 7);
    checks++;
    CHECK(report("GELU relative error on [-8, 8] samples", rel_err(g, gw, 7), TOL_OP_SHORT_REL, 0), "gelu");

    // patch conv (stem-like: 4x4/4 with time padding 4; downsample-like: 2x2/2), odd sizes
    int shapes[2][6] = {{37, 23, 3, 5, 4, 4}, {13, 9, 6, 4, 2, 0}};  // T, F, Cin, Cout, k, pad(time)
    for (int s = 0; s < 2; s++) {
        int T = shapes[s][0], F = shapes[s][1], Ci = shapes[s][2], Co = shapes[s][3], k = shapes[s][4], pt = shapes[s][5];
        float *x = rnd((size_t)T * F * Ci), *w = rnd((size_t)Co * Ci * k * k), *b = rnd(Co);
        int T0, F0;
        int To = ref_conv2d_patch_out(T, k, pt), Fo = ref_conv2d_patch_out(F, k, 0);
        float *y = malloc(sizeof(float) * (size_t)To * Fo * Co);
        ref_conv2d_patch(x, T, F, Ci, w, b, Co, k, k, pt, 0, y, &T0, &F0);
        double *yw = calloc((size_t)To * Fo * Co, sizeof(double));
        for (int t = 0; t < To; t++)
            for (int f = 0; f < Fo; f++)
                for (int co = 0; co < Co; co++) {
                    double acc = b[co];
                    for (int ci = 0; ci < Ci; ci++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int ts = t * k + i - pt, fs = f * k + j;
                                if (ts >= 0 && ts < T && fs < F)
                                    acc += (double)w[((co * Ci + ci) * k + i) * k + j] * x[((size_t)ts * F + fs) * Ci + ci];
                            }
                    yw[((size_t)t * Fo + f) * Co + co] = acc;
                }
        char label[64];
        snprintf(label, sizeof label, "patch conv %dx%d/%d pad %d, (%d,%d,%d)->%d", k, k, k, pt, T, F, Ci, Co);
        checks += 2;
        CHECK(T0 == To && F0 == Fo, "conv output size");
        CHECK(report(label, rel_err(y, yw, (size_t)To * Fo * Co), TOL_OP_REL, 0), "patch conv");
        free(x), free(w), free(b), free(y), free(yw);
    }

    // depthwise 7x7 over shapes around its 16-channel x 8-column register tile
    // (T, F, C): channel counts around the 16-channel vector (5, 45: a scalar tail), F around the 8-column tile
    // (1, 9, 17, 56 as in ConvNeXt-Tiny's first stage) and T shorter than the kernel
    const int dw_shapes[7][3] = {{11, 9, 5}, {11, 9, 32}, {11, 9, 45}, {3, 1, 16}, {11, 17, 48}, {5, 56, 96}, {2, 8, 16}};
    for (int s = 0; s < 7; s++) {
        int T = dw_shapes[s][0], F = dw_shapes[s][1], C = dw_shapes[s][2];
        float *x = rnd((size_t)T * F * C), *w = rnd((size_t)C * 49), *b = rnd(C), *y = malloc(sizeof(float) * T * F * C);
        double *yw = malloc(sizeof(double) * T * F * C);
        ref_dwconv7(x, T, F, C, w, b, y);
        for (int t = 0; t < T; t++)
            for (int f = 0; f < F; f++)
                for (int c = 0; c < C; c++) {
                    double acc = b[c];
                    for (int i = 0; i < 7; i++)
                        for (int j = 0; j < 7; j++) {
                            int ts = t + i - 3, fs = f + j - 3;
                            if (ts >= 0 && ts < T && fs >= 0 && fs < F)
                                acc += (double)w[c * 49 + i * 7 + j] * x[((size_t)ts * F + fs) * C + c];
                        }
                    yw[((size_t)t * F + f) * C + c] = acc;
                }
        char label[64];
        snprintf(label, sizeof label, "depthwise 7x7, (%d,%d,%d)", T, F, C);
        checks++;
        CHECK(report(label, rel_err(y, yw, (size_t)T * F * C), TOL_OP_SHORT_REL, 0), "dwconv");
        free(x), free(w), free(b), free(y), free(yw);
    }

    // LayerNorm on rows of 13 and 96 channels, values offset by 50 (variance well below the mean's square)
    for (int C = 13; C <= 96; C += 83) {
        int R = 7;
        float *x = rnd((size_t)R * C), *w = rnd(C), *b = rnd(C);
        for (int i = 0; i < R * C; i++) x[i] += 50.0f;
        double *yw = malloc(sizeof(double) * R * C);
        for (int r = 0; r < R; r++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += x[r * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
            v /= C;
            for (int c = 0; c < C; c++) yw[r * C + c] = (x[r * C + c] - m) / sqrt(v + 1e-6) * w[c] + b[c];
        }
        ref_layernorm(x, R, C, w, b, 1e-6f);
        char label[64];
        snprintf(label, sizeof label, "layernorm C=%d (mean 50)", C);
        checks++;
        CHECK(report(label, rel_err(x, yw, (size_t)R * C), TOL_OP_REL, 0), "layernorm");
        free(x), free(w), free(b), free(yw);
    }

    // linears: sgemm and the fixed-order one, K not a multiple of 16; then batch invariance of the latter
    {
        int M = 9, K = 77, N = 33;
        float *x = rnd((size_t)M * K), *W = rnd((size_t)N * K), *b = rnd(N);
        float *y1 = malloc(sizeof(float) * M * N), *y2 = malloc(sizeof(float) * M * N), *y3 = malloc(sizeof(float) * N);
        double *yw = malloc(sizeof(double) * M * N);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double acc = b[n];
                for (int k = 0; k < K; k++) acc += (double)x[m * K + k] * W[n * K + k];
                yw[m * N + n] = acc;
            }
        ref_linear(x, M, K, W, b, N, y1);
        ref_linear_rows(x, M, K, W, b, N, y2);
        checks += 2;
        CHECK(report("linear (sgemm) 9x77 . 77x33", rel_err(y1, yw, (size_t)M * N), TOL_OP_REL, 0), "linear");
        CHECK(report("linear_rows 9x77 . 77x33", rel_err(y2, yw, (size_t)M * N), TOL_OP_REL, 0), "linear_rows");
        int same = 1;
        for (int m = 0; m < M; m++) {  // each row alone
            ref_linear_rows(x + m * K, 1, K, W, b, N, y3);
            same &= !memcmp(y3, y2 + m * N, sizeof(float) * N);
        }
        // and in batches of 2..8 starting anywhere: every row count of the 4-row register tile and its remainders
        for (int mb = 2; mb <= 8; mb++)
            for (int m0 = 0; m0 + mb <= M; m0 += 3) {
                ref_linear_rows(x + m0 * K, mb, K, W, b, N, y1);
                same &= !memcmp(y1, y2 + m0 * N, sizeof(float) * N * mb);
            }
        checks++;
        CHECK(same, "linear_rows: a row computed alone or in a smaller batch differs from the same row in a batch of 9");
        printf("  %-52s %s\n", "linear_rows: rows alone vs in a batch", same ? "bit-identical" : "DIFFER");
        free(x), free(W), free(b), free(y1), free(y2), free(y3), free(yw);
    }

    // attention: 3 heads of 5, 11 keys of which 8 valid
    {
        int D = 15, H = 3, L = 11, valid = 8, hd = 5;
        float *q = rnd(D), *k = rnd((size_t)L * D), *v = rnd((size_t)L * D), out[15];
        double ow[15];
        for (int h = 0; h < H; h++) {
            double sc[11], mx = -INFINITY, s = 0;
            for (int l = 0; l < valid; l++) {
                sc[l] = 0;
                for (int d = 0; d < hd; d++) sc[l] += (double)q[h * hd + d] * k[l * D + h * hd + d];
                sc[l] /= sqrt(hd);
                mx = fmax(mx, sc[l]);
            }
            for (int l = 0; l < valid; l++) s += sc[l] = exp(sc[l] - mx);
            for (int d = 0; d < hd; d++) {
                ow[h * hd + d] = 0;
                for (int l = 0; l < valid; l++) ow[h * hd + d] += sc[l] / s * v[l * D + h * hd + d];
            }
        }
        ref_attend(q, k, v, L, valid, D, H, out);
        checks++;
        CHECK(report("attention (3 heads, 8 of 11 keys valid)", rel_err(out, ow, D), TOL_OP_REL, 0), "attention");
        free(q), free(k), free(v);
    }
    // ConvNeXt MLP (LN, Linear C->4C, GELU, Linear 4C->C, layer scale, residual) on 1400 rows of 96 channels
    // (stage 1's width), whole and in chunks of 100, 300 and 467 rows (in parallel, the last chunk short): each
    // against double. Whether a chunked row is bit-identical to the whole pass is OpenBLAS's property, not ours
    // (with the SkylakeX kernels the engine uses it is; the generic ones sum a block's last rows in another order),
    // so it is printed, not checked.
    {
        const int P = 1400, C = 96, H4 = 4 * C;
        const float eps = 1e-6f;
        float *x0 = rnd((size_t)P * C), *t0 = rnd((size_t)P * C), *lw = rnd(C), *lb = rnd(C), *w1 = rnd((size_t)H4 * C),
              *b1 = rnd(H4), *w2 = rnd((size_t)C * H4), *b2 = rnd(C), *gm = rnd(C);
        double *want = malloc(sizeof(double) * P * C), ln[96], hid[384];
        for (int p = 0; p < P; p++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += t0[p * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (t0[p * C + c] - m) * (t0[p * C + c] - m);
            v /= C;
            for (int c = 0; c < C; c++) ln[c] = (t0[p * C + c] - m) / sqrt(v + eps) * lw[c] + lb[c];
            for (int j = 0; j < H4; j++) {
                double a = b1[j];
                for (int c = 0; c < C; c++) a += ln[c] * w1[j * C + c];
                hid[j] = 0.5 * a * (1.0 + erf(a / sqrt(2.0)));
            }
            for (int c = 0; c < C; c++) {
                double a = b2[c];
                for (int j = 0; j < H4; j++) a += hid[j] * w2[c * H4 + j];
                want[p * C + c] = x0[p * C + c] + gm[c] * a;
            }
        }
        float *x = malloc(sizeof(float) * P * C), *t = malloc(sizeof(float) * P * C), *whole = malloc(sizeof(float) * P * C);
        const int chunks[4] = {P, 100, 300, 467};
        size_t hn = 0;
        for (int i = 0; i < 4; i++)
            if (ref_convnext_mlp_scratch(P, C, chunks[i]) > hn) hn = ref_convnext_mlp_scratch(P, C, chunks[i]);
        float *h = malloc(sizeof(float) * hn);
        int same = 1;
        for (int i = 0; i < 4; i++) {
            memcpy(x, x0, sizeof(float) * P * C), memcpy(t, t0, sizeof(float) * P * C);
            ref_convnext_mlp(x, t, P, C, lw, lb, eps, w1, b1, w2, b2, gm, chunks[i], h);
            if (i == 0) memcpy(whole, x, sizeof(float) * P * C);
            else same &= !memcmp(x, whole, sizeof(float) * P * C);
            char name[64];
            snprintf(name, sizeof name, "ConvNeXt MLP 1400 x 96, chunks of %d rows", chunks[i]);
            checks++;
            CHECK(report(name, rel_err(x, want, (size_t)P * C), TOL_OP_REL, 0), "convnext_mlp");
        }
        printf("  %-52s %s\n", "ConvNeXt MLP: chunked vs whole (OpenBLAS's kernels)", same ? "bit-identical" : "differ");
        free(x0), free(t0), free(lw), free(lb), free(w1), free(b1), free(w2), free(b2), free(gm), free(want);
        free(x), free(t), free(whole), free(h);
    }
    return test_finish("test_ops", checks);
}
