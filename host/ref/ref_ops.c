// CPU reference ops (see ref_ops.h). Accumulations that decide a whole-tensor statistic (LayerNorm mean and
// variance) are carried in double; dot products in float32 like PyTorch, with a fixed order where noted.
#include "ref_ops.h"
#include "erf_rational.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else  // the emulation tests build these ops without OpenMP: one thread
static inline int omp_get_thread_num(void) { return 0; }
#endif

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

// Depthwise 7x7 in register tiles: 16 channels (one vector) x DW_FT output columns of one output row. For each of
// the 7 input rows the DW_FT + 6 input vectors it needs are loaded once and each feeds up to 7 outputs (56 FMAs
// per 21 loads instead of one load per FMA). Every output keeps the plain order, bias then taps i-major j-minor;
// a tap outside the input in F adds w * 0, which leaves the sum unchanged, one outside in T is skipped.
// (GCC inserts vzeroupper after such loops only from -O2; a -O0/-O1 build leaves the upper register state dirty and
// slows the SSE code that runs next. tests/emu-runtime/CMakeLists.txt met it.)
typedef float ac_v16 __attribute__((vector_size(64), aligned(4)));  // aligned(4): unaligned loads and stores
#define DW_FT 8
AC_CLONES static void dw_row16(const float *x, int T, int F, int C, const float *wr, const float *b, int t, int c0,
                               float *y) {
    const ac_v16 zero = {0};
    for (int f0 = 0; f0 < F; f0 += DW_FT) {
        ac_v16 acc[DW_FT];
        for (int u = 0; u < DW_FT; u++) acc[u] = *(const ac_v16 *)(b + c0);
        for (int i = 0; i < 7; i++) {
            const int ts = t + i - 3;
            if (ts < 0 || ts >= T) continue;
            const float *xr = x + (size_t)ts * F * C + c0;
            ac_v16 in[DW_FT + 6];
            for (int k = 0; k < DW_FT + 6; k++) {
                const int fs = f0 + k - 3;
                in[k] = fs >= 0 && fs < F ? *(const ac_v16 *)(xr + (size_t)fs * C) : zero;
            }
            for (int j = 0; j < 7; j++) {
                const ac_v16 w = *(const ac_v16 *)(wr + (size_t)(i * 7 + j) * C + c0);
                for (int u = 0; u < DW_FT; u++) acc[u] += w * in[u + j];
            }
        }
        for (int u = 0; u < DW_FT && f0 + u < F; u++) *(ac_v16 *)(y + ((size_t)t * F + f0 + u) * C + c0) = acc[u];
    }
}

// The channels past the last multiple of 16, one at a time (none in ConvNeXt-Tiny; small test models have them).
static void dw_row_tail(const float *x, int T, int F, int C, const float *wr, const float *b, int t, int c0, float *y) {
    for (int f = 0; f < F; f++)
        for (int c = c0; c < C; c++) {
            float acc = b[c];
            for (int i = 0; i < 7; i++) {
                const int ts = t + i - 3;
                if (ts < 0 || ts >= T) continue;
                for (int j = 0; j < 7; j++) {
                    const int fs = f + j - 3;
                    if (fs >= 0 && fs < F) acc += wr[(size_t)(i * 7 + j) * C + c] * x[((size_t)ts * F + fs) * C + c];
                }
            }
            y[((size_t)t * F + f) * C + c] = acc;
        }
}

void ref_dwconv7(const float *x, int T, int F, int C, const float *w, const float *b, float *y) {
    // weight (C, 1, 7, 7) -> (7, 7, C) so the inner loop runs over contiguous channels
    float *wr = malloc(sizeof(float) * 49 * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 49; k++) wr[(size_t)k * C + c] = w[(size_t)c * 49 + k];
    const int C16 = C / 16 * 16;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        for (int c0 = 0; c0 < C16; c0 += 16) dw_row16(x, T, F, C, wr, b, t, c0, y);
        if (C16 < C) dw_row_tail(x, T, F, C, wr, b, t, C16, y);
    }
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

// The fixed tree that combines 16 lane sums: dot_fixed ends with it, lr_tile with the same tree vectorized
// (tree16x16).
static inline float tree16(float acc[16]) {
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) acc[l] += acc[l + h];
    return acc[0];
}

// The K % 16 tail of a row as one vector, zero-padded: added like a full step, its extra lanes get 0 * 0, which
// changes nothing.
static inline __attribute__((always_inline)) void tail16(const float *p, int n, ac_v16 *v) {
    *v = (ac_v16){0};
    for (int l = 0; l < n; l++) (*v)[l] = p[l];
}

// Dot product with 16 interleaved float accumulators (one AVX-512 vector) combined in a fixed tree: the order of
// operations depends on K only, never on how many rows are computed together. The same vector steps and tree as
// lr_tile below (whether they agree to the last bit is up to the compiler's FMA contraction: in the optimised
// build they do; nothing depends on it, as an output goes through one or the other whatever the row count).
AC_CLONES static float dot_fixed(const float *a, const float *w, int K) {
    ac_v16 acc = {0};
    int k = 0;
    for (; k + 16 <= K; k += 16) acc += *(const ac_v16 *)(a + k) * *(const ac_v16 *)(w + k);
    if (k < K) {
        ac_v16 at, wt;
        tail16(a + k, K - k, &at);
        tail16(w + k, K - k, &wt);
        acc += at * wt;
    }
    float r[16];
    memcpy(r, &acc, sizeof r);
    return tree16(r);
}

// tree16 of 16 vectors at once: lane o of the result is tree16(v[o]). At each level of the tree the lanes that
// tree16 adds pairwise are gathered from two vectors into two (shuffles) and added as vectors, so every sum is the
// same two floats added: bit-identical to tree16, at 15 vector adds instead of 240 scalar ones (with K = 256 the
// scalar trees cost more than a 4 x 4 tile's FMAs).
typedef int ac_i16 __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) void tree16x16(const ac_v16 *v, float out[16]) {
    const ac_i16 lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};  // level h = 8: lanes l and l + 8
    const ac_i16 lo4 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};  // h = 4, 8 lanes per output
    const ac_i16 lo2 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};  // h = 2, 4 lanes per output
    const ac_i16 lo1 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}; // h = 1, 2 lanes per output
    ac_v16 s1[8], s2[4], s3[2];
    for (int p = 0; p < 8; p++)
        s1[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], lo8) + __builtin_shuffle(v[2 * p], v[2 * p + 1], lo8 + 8);
    for (int p = 0; p < 4; p++)
        s2[p] = __builtin_shuffle(s1[2 * p], s1[2 * p + 1], lo4) + __builtin_shuffle(s1[2 * p], s1[2 * p + 1], lo4 + 4);
    for (int p = 0; p < 2; p++)
        s3[p] = __builtin_shuffle(s2[2 * p], s2[2 * p + 1], lo2) + __builtin_shuffle(s2[2 * p], s2[2 * p + 1], lo2 + 2);
    const ac_v16 r = __builtin_shuffle(s3[0], s3[1], lo1) + __builtin_shuffle(s3[0], s3[1], lo1 + 1);
    memcpy(out, &r, sizeof r);
}

// LR_MR rows x LR_NR outputs of ref_linear_rows at once, each output in exactly dot_fixed's order: 16 lanes over
// k in steps of 16, the K % 16 tail added into lanes 0.. (the other lanes get 0 * 0, which changes nothing), then
// the same tree. Each loaded weight vector serves LR_MR rows and each row vector LR_NR outputs: 8 loads per 16 FMAs
// where dot_fixed does 2 per FMA (the decoder's GEMMs have a few rows per clip: 3 beams).
#define LR_MR 4
#define LR_NR 4
_Static_assert(LR_MR * LR_NR == 16, "lr_tile reduces its 16 outputs with one tree16x16");
static inline __attribute__((always_inline)) void lr_tile(const float *x, int K, const float *W, const float *b,
                                                          int N, int n0, int64_t m0, int mr, const float *Wnext,
                                                          float *y) {
    ac_v16 acc[LR_MR][LR_NR];
    for (int i = 0; i < LR_MR; i++)
        for (int j = 0; j < LR_NR; j++) acc[i][j] = (ac_v16){0};
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        ac_v16 w[LR_NR];
        for (int j = 0; j < LR_NR; j++) w[j] = *(const ac_v16 *)(W + (size_t)(n0 + j) * K + k);
        if (Wnext)
            for (int j = 0; j < LR_NR; j++) __builtin_prefetch(Wnext + (size_t)j * K + k);
        for (int i = 0; i < mr; i++) {
            const ac_v16 a = *(const ac_v16 *)(x + (m0 + i) * K + k);
            for (int j = 0; j < LR_NR; j++) acc[i][j] += a * w[j];
        }
    }
    if (k < K) {
        ac_v16 w[LR_NR];
        for (int j = 0; j < LR_NR; j++) tail16(W + (size_t)(n0 + j) * K + k, K - k, &w[j]);
        for (int i = 0; i < mr; i++) {
            ac_v16 a;
            tail16(x + (m0 + i) * K + k, K - k, &a);
            for (int j = 0; j < LR_NR; j++) acc[i][j] += a * w[j];
        }
    }
    float r[LR_MR * LR_NR];
    tree16x16((const ac_v16 *)acc, r);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < LR_NR; j++) y[(m0 + i) * N + n0 + j] = r[i * LR_NR + j] + (b ? b[n0 + j] : 0.0f);
}

// The first tile of a block of weight rows also prefetches the next block's (Wnext, NULL at the last): decoding
// streams ~40 MB of weights per step through a few rows each, and the hardware prefetcher alone leaves the loads
// waiting on memory.
AC_CLONES static void lr_columns(const float *x, int64_t M, int K, const float *W, const float *b, int N, int n0,
                                 const float *Wnext, float *y) {
    int64_t m = 0;
    for (; m + LR_MR <= M; m += LR_MR) lr_tile(x, K, W, b, N, n0, m, LR_MR, m ? NULL : Wnext, y);
    switch (M - m) {  // constant row counts, so the tile's loops unroll and stay in registers
    case 3: lr_tile(x, K, W, b, N, n0, m, 3, m ? NULL : Wnext, y); break;
    case 2: lr_tile(x, K, W, b, N, n0, m, 2, m ? NULL : Wnext, y); break;
    case 1: lr_tile(x, K, W, b, N, n0, m, 1, m ? NULL : Wnext, y); break;
    default: break;
    }
}

void ref_linear_rows(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y) {
    // output-major: each block of LR_NR weight rows is read once from memory and reused from cache by all M rows
    // (the decoder's weights are far larger than its activations)
    const int N4 = N / LR_NR * LR_NR;
#pragma omp parallel for schedule(static) if ((int64_t)N * K > 65536)
    for (int n0 = 0; n0 < N4; n0 += LR_NR)
        lr_columns(x, M, K, W, b, N, n0, n0 + LR_NR < N4 ? W + (size_t)(n0 + LR_NR) * K : NULL, y);
    for (int n = N4; n < N; n++) {
        const float *wn = W + (size_t)n * K;
        const float bn = b ? b[n] : 0.0f;
        for (int64_t m = 0; m < M; m++) y[m * N + n] = dot_fixed(x + m * K, wn, K) + bn;
    }
}

float ref_erf(float x) { return ac_erf_rational(x); }

AC_CLONES static void gelu_chunk(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + ac_erf_rational(x[i] * (float)M_SQRT1_2));
}

void ref_gelu_erf(float *x, int64_t n) {
    const int64_t chunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > 2 * chunk)
    for (int64_t i = 0; i < n; i += chunk) gelu_chunk(x + i, n - i < chunk ? n - i : chunk);
}

// Large stages go in chunks whose 4C hidden activations (~2 MB) stay in a core's L2 cache; chunks are never below
// MLP_MIN_ROWS rows, where the GEMMs lose more than the cache gains: ConvNeXt-Tiny's stages 1-3 are chunked, stage
// 4 (217 rows per 10 s clip) runs whole with threaded GEMMs (bench/bench_cpu_mlp.c, bench/RESULTS.md).
#define MLP_CHUNK_FLOATS (1 << 19)
#define MLP_MIN_ROWS 288
int64_t ref_convnext_mlp_chunk_rows(int64_t P, int C) {
    int64_t cap = MLP_CHUNK_FLOATS / (4 * C);
    if (cap < MLP_MIN_ROWS) cap = MLP_MIN_ROWS;
    const int64_t n = (P + cap - 1) / cap;
    return n < 2 ? P : (P + n - 1) / n;
}

size_t ref_convnext_mlp_scratch(int64_t P, int C, int64_t rows) {
#ifdef _OPENMP
    const int threads = rows < P ? omp_get_max_threads() : 1;  // the parallel region below, if it runs
#else
    const int threads = 1;
#endif
    return (size_t)rows * 4 * C * threads;
}

void ref_convnext_mlp(float *x, float *t, int64_t P, int C, const float *ln_w, const float *ln_b, float eps,
                      const float *pw1_w, const float *pw1_b, const float *pw2_w, const float *pw2_b,
                      const float *gamma, int64_t rows, float *h) {
    // chunks in parallel, each with one-thread GEMMs: OpenBLAS's OpenMP build runs on one thread inside a
    // parallel region; one chunk (rows == P) runs outside it, its GEMMs and loops threaded
#pragma omp parallel for schedule(dynamic) if (rows < P)
    for (int64_t r0 = 0; r0 < P; r0 += rows) {
        const int64_t n = P - r0 < rows ? P - r0 : rows;
        float *tc = t + r0 * C, *xc = x + r0 * C, *hc = h + (size_t)omp_get_thread_num() * rows * 4 * C;
        ref_layernorm(tc, n, C, ln_w, ln_b, eps);
        ref_linear(tc, n, C, pw1_w, pw1_b, 4 * C, hc);
        ref_gelu_erf(hc, n * 4 * C);
        ref_linear(hc, n, 4 * C, pw2_w, pw2_b, C, tc);
        for (int64_t p = 0; p < n; p++)
            for (int c = 0; c < C; c++) xc[p * C + c] += gamma[c] * tc[p * C + c];
    }
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
