// CPU reference ops (see ref_ops.h). Accumulations that decide a whole-tensor statistic (LayerNorm mean and
// variance) are carried in double; dot products in float32 like PyTorch, with a fixed order where noted.
#include "ref_ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void ref_dwconv7(const float *x, int T, int F, int C, const float *w, const float *b, float *y) {
    // weight (C, 1, 7, 7) -> (7, 7, C) so the inner loop runs over contiguous channels
    float *wr = malloc(sizeof(float) * 49 * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 49; k++) wr[(size_t)k * C + c] = w[(size_t)c * 49 + k];
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (int f = 0; f < F; f++) {
            float *o = y + ((size_t)t * F + f) * C;
            for (int c = 0; c < C; c++) o[c] = b[c];
            for (int i = 0; i < 7; i++) {
                int ts = t + i - 3;
                if (ts < 0 || ts >= T) continue;
                for (int j = 0; j < 7; j++) {
                    int fs = f + j - 3;
                    if (fs < 0 || fs >= F) continue;
                    const float *xi = x + ((size_t)ts * F + fs) * C, *wi = wr + (size_t)(i * 7 + j) * C;
                    for (int c = 0; c < C; c++) o[c] += wi[c] * xi[c];
                }
            }
        }
    free(wr);
}

void ref_layernorm(float *x, int64_t rows, int C, const float *w, const float *b, float eps) {
#pragma omp parallel for schedule(static) if (rows > 256)
    for (int64_t r = 0; r < rows; r++) {
        float *v = x + r * C;
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) s += v[c];
        double mean = s / C;
        for (int c = 0; c < C; c++) ss += (v[c] - mean) * (v[c] - mean);
        double inv = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) v[c] = (float)((v[c] - mean) * inv) * w[c] + b[c];
    }
}

void ref_linear(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y) {
    if (b) {
        for (int64_t m = 0; m < M; m++) memcpy(y + m * N, b, sizeof(float) * N);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

// Dot product with 8 interleaved float accumulators combined in a fixed tree: the order depends on K only.
static inline float dot_fixed(const float *a, const float *w, int K) {
    float acc[8] = {0};
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[k + l] * w[k + l];
    for (int l = 0; k < K; k++, l++) acc[l] += a[k] * w[k];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

void ref_linear_rows(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y) {
#pragma omp parallel for collapse(2) schedule(static) if (M * N > 4096)
    for (int64_t m = 0; m < M; m++)
        for (int n = 0; n < N; n++) y[m * N + n] = dot_fixed(x + m * K, W + (size_t)n * K, K) + (b ? b[n] : 0.0f);
}

void ref_gelu_erf(float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
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
