// CPU reference ops (see ref_ops.h). Accumulations that decide a whole-tensor statistic (LayerNorm mean and
// variance) are carried in double; dot products in float32 like PyTorch, with a fixed order where noted.
#include "ref_ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Hot elementwise loops are compiled for AVX-512, AVX2 and baseline x86-64, picked at load time (GCC/clang
// function multiversioning): one portable binary, full vector width where the CPU has it. Every lane keeps its
// scalar order of operations, so the clones differ at most by FMA contraction.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(AC_NO_CLONES)
#define AC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AC_CLONES
#endif

int ref_conv2d_patch_out(int n, int k, int pad) { return (n + 2 * pad - k) / k + 1; }

void ref_conv2d_patch(const float *x, int T, int F, int Cin, const float *w, const float *b, int Cout, int kt, int kf,
                      int pt, int pf, float *y, int *T0_, int *F0_) {
    const int T0 = ref_conv2d_patch_out(T, kt, pt), F0 = ref_conv2d_patch_out(F, kf, pf);
    const int K = kt * kf * Cin;
    // im2col with columns ordered (kt, kf, cin) and the weight reordered to match: one sgemm
    float *cols = malloc(sizeof(float) * (size_t)T0 * F0 * K);
    float *wr = malloc(sizeof(float) * (size_t)Cout * K);
    for (int co = 0; co < Cout; co++)
        for (int i = 0; i < kt; i++)
            for (int j = 0; j < kf; j++)
                for (int ci = 0; ci < Cin; ci++)
                    wr[(size_t)co * K + ((size_t)i * kf + j) * Cin + ci] = w[(((size_t)co * Cin + ci) * kt + i) * kf + j];
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T0; t++)
        for (int f = 0; f < F0; f++) {
            float *c = cols + ((size_t)t * F0 + f) * K;
            for (int i = 0; i < kt; i++) {
                int ts = t * kt + i - pt;
                for (int j = 0; j < kf; j++) {
                    int fs = f * kf + j - pf;
                    float *dst = c + ((size_t)i * kf + j) * Cin;
                    if (ts < 0 || ts >= T || fs < 0 || fs >= F) memset(dst, 0, sizeof(float) * Cin);
                    else memcpy(dst, x + ((size_t)ts * F + fs) * Cin, sizeof(float) * Cin);
                }
            }
        }
    ref_linear(cols, (int64_t)T0 * F0, K, wr, b, Cout, y);
    free(cols);
    free(wr);
    *T0_ = T0;
    *F0_ = F0;
}

#define DW_CB 32  // channels accumulated in registers across the 49 taps
AC_CLONES static void dw_row(const float *x, int T, int F, int C, const float *wr, const float *b, int t, float *y) {
    for (int f = 0; f < F; f++) {
        float *o = y + ((size_t)t * F + f) * C;
        for (int c0 = 0; c0 < C; c0 += DW_CB) {
            const int cn = C - c0 < DW_CB ? C - c0 : DW_CB;
            float acc[DW_CB];
            for (int c = 0; c < DW_CB; c++) acc[c] = c < cn ? b[c0 + c] : 0.0f;
            for (int i = 0; i < 7; i++) {
                int ts = t + i - 3;
                if (ts < 0 || ts >= T) continue;
                for (int j = 0; j < 7; j++) {
                    int fs = f + j - 3;
                    if (fs < 0 || fs >= F) continue;
                    const float *xi = x + ((size_t)ts * F + fs) * C + c0, *wi = wr + (size_t)(i * 7 + j) * C + c0;
                    if (cn == DW_CB)
                        for (int c = 0; c < DW_CB; c++) acc[c] += wi[c] * xi[c];
                    else
                        for (int c = 0; c < cn; c++) acc[c] += wi[c] * xi[c];
                }
            }
            for (int c = 0; c < cn; c++) o[c0 + c] = acc[c];
        }
    }
}

void ref_dwconv7(const float *x, int T, int F, int C, const float *w, const float *b, float *y) {
    // weight (C, 1, 7, 7) -> (7, 7, C) so the inner loop runs over contiguous channels
    float *wr = malloc(sizeof(float) * 49 * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 49; k++) wr[(size_t)k * C + c] = w[(size_t)c * 49 + k];
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) dw_row(x, T, F, C, wr, b, t, y);
    free(wr);
}

// One row: mean and biased variance with 8 interleaved double partial sums (fixed order, vectorizable).
AC_CLONES static void ln_row(float *v, int C, const float *w, const float *b, float eps) {
    double s[8] = {0}, q[8] = {0};
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int l = 0; l < 8; l++) s[l] += v[c + l];
    for (int l = 0; c < C; c++, l++) s[l] += v[c];
    double mean = (((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))) / C;
    for (c = 0; c + 8 <= C; c += 8)
        for (int l = 0; l < 8; l++) q[l] += (v[c + l] - mean) * (v[c + l] - mean);
    for (int l = 0; c < C; c++, l++) q[l] += (v[c] - mean) * (v[c] - mean);
    double var = (((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]))) / C;
    float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
    for (c = 0; c < C; c++) v[c] = (v[c] - fm) * inv * w[c] + b[c];
}

void ref_layernorm(float *x, int64_t rows, int C, const float *w, const float *b, float eps) {
#pragma omp parallel for schedule(static) if (rows > 256)
    for (int64_t r = 0; r < rows; r++) ln_row(x + r * C, C, w, b, eps);
}

void ref_linear(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y) {
    if (b) {
        for (int64_t m = 0; m < M; m++) memcpy(y + m * N, b, sizeof(float) * N);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

// Dot product with 16 interleaved float accumulators (one AVX-512 vector) combined in a fixed tree: the order of
// operations depends on K only, never on how many rows are computed together.
AC_CLONES static float dot_fixed(const float *a, const float *w, int K) {
    float acc[16] = {0};
    int k = 0;
    for (; k + 16 <= K; k += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[k + l] * w[k + l];
    for (int l = 0; k < K; k++, l++) acc[l] += a[k] * w[k];
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) acc[l] += acc[l + h];
    return acc[0];
}

void ref_linear_rows(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y) {
    // output-major: each weight row is read once from memory and reused from cache by all M rows (the decoder's
    // weights are far larger than its activations)
#pragma omp parallel for schedule(static) if ((int64_t)N * K > 65536)
    for (int n = 0; n < N; n++) {
        const float *wn = W + (size_t)n * K;
        const float bn = b ? b[n] : 0.0f;
        for (int64_t m = 0; m < M; m++) y[m * N + n] = dot_fixed(x + m * K, wn, K) + bn;
    }
}

// erf(x) as a rational function x P(x^2) / Q(x^2) on x clamped to [-4, 4] (beyond, erf is +-1 in float32):
// max abs error 4.2e-7 against erf in double over [-6, 6] (tests/test_ops.c), branch-free so it vectorizes;
// glibc's erff is ~25x slower and GELU runs on every hidden activation of the encoder (~40 M per 10 s clip).
static inline float erf_rational(float a) {
    float x = a < -4.0f ? -4.0f : a > 4.0f ? 4.0f : a, x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return x * p / q;
}

float ref_erf(float x) { return erf_rational(x); }

AC_CLONES static void gelu_chunk(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erf_rational(x[i] * (float)M_SQRT1_2));
}

void ref_gelu_erf(float *x, int64_t n) {
    const int64_t chunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > 2 * chunk)
    for (int64_t i = 0; i < n; i += chunk) gelu_chunk(x + i, n - i < chunk ? n - i : chunk);
}

void ref_relu(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ref_attend(const float *q, const float *k, const float *v, int L, int valid, int D, int nhead, float *out) {
    const int hd = D / nhead;
    const float scale = 1.0f / sqrtf((float)hd);
    float sc[L > 0 ? L : 1];
    for (int h = 0; h < nhead; h++) {
        const float *qh = q + h * hd;
        float mx = -INFINITY;
        for (int l = 0; l < valid; l++) {
            sc[l] = dot_fixed(qh, k + (size_t)l * D + h * hd, hd) * scale;
            mx = fmaxf(mx, sc[l]);
        }
        double sum = 0;
        for (int l = 0; l < valid; l++) {
            sc[l] = expf(sc[l] - mx);
            sum += sc[l];
        }
        float *oh = out + h * hd;
        for (int d = 0; d < hd; d++) oh[d] = 0.0f;
        for (int l = 0; l < valid; l++) {
            float p = (float)(sc[l] / sum);
            const float *vl = v + (size_t)l * D + h * hd;
            for (int d = 0; d < hd; d++) oh[d] += p * vl[d];
        }
    }
}
