// The decoder's step kernels against the CPU oracle (host/ref/ref_ops.c), random inputs over many shapes:
//   decode self-attention (KV cache + beam indirection through a random ancestor table), cross-attention
//   (packed per-clip memory, odd lengths, key masks), and the per-step ops the decoder chains: linear (FP32 and
//   BF16, with and without GELU; rows read on the device), add + LayerNorm, the linear with that LayerNorm fused
//   (ac_gpu_linear_add_ln, against the reference and against its two-launch path), embedding + positions, and the
//   KV cache gathered to follow its rows (ac_gpu_kv_cache_gather, the alternative to the indirection).
// Outputs are poisoned with NaN before each run: rows that must not be written stay NaN, rows that must be
// written and aren't fail. Errors are max |gpu - cpu| / max |cpu| over the output, printed as a share of the
// budget (tests/tolerances.h). Exits 77 without a GPU.
#include "bf16.h"
#include "../kernels/attention_decode.h"
#include "../kernels/decoder_add_ln.h"
#include "../kernels/decoder_embed.h"
#include "../kernels/decoder_linear.h"
#include "../kernels/device.h"
#include "../kernels/kv_cache_gather.h"
#include "ref/ref_ops.h"
#include "testutil.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 12345;
static float frand(void) {  // uniform in [-1, 1)
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static int irand(int n) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((g_rng >> 33) % (uint64_t)n);
}

static int checks;
static double worst[8];  // per kernel: share of the budget
enum { W_SELF, W_CROSS, W_LIN32, W_LIN16, W_LINSPLIT, W_LN, W_EMB, W_LINLN };

static void *dev_copy(const void *h, size_t bytes) {
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return NULL;
    if (h && cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
}
static void *dev_nan(size_t n_floats) {
    float *h = malloc(sizeof(float) * (n_floats ? n_floats : 1));
    for (size_t i = 0; i < n_floats; i++) h[i] = NAN;
    void *d = dev_copy(h, sizeof(float) * n_floats);
    free(h);
    return d;
}
static void to_host(void *h, const void *d, size_t bytes) {
    CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost) == cudaSuccess, "copy back");
}

// compares rows [want_rows] of got vs ref (D wide); rows with written[r] == 0 must still be NaN
static void compare_rows(const char *what, int kind, const float *ref, const float *got, const int *written, int rows,
                         int D, double tol) {
    double md = 0, mr = 0;
    int bad_nan = 0, unwritten = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < D; i++) {
            const float g = got[(size_t)r * D + i];
            if (!written[r]) {
                if (!isnan(g)) bad_nan++;
                continue;
            }
            if (isnan(g)) {
                unwritten++;
                continue;
            }
            md = fmax(md, fabs((double)g - ref[(size_t)r * D + i]));
            mr = fmax(mr, fabs((double)ref[(size_t)r * D + i]));
        }
    const double rel = mr > 0 ? md / mr : md;
    CHECK(!bad_nan, "%s: %d elements written outside the live rows", what, bad_nan);
    CHECK(!unwritten, "%s: %d elements of live rows not written (NaN)", what, unwritten);
    CHECK(rel <= tol, "%s: rel error %.3g > %.3g (%.0f %% of the budget)", what, rel, tol, 100 * rel / tol);
    if (rel / tol > worst[kind]) worst[kind] = rel / tol;
    checks += 3;
}

// clips with random live counts (some 0), laid out as the beam search does
static int make_rows(int n_clips, int K, int *row_off, int *n_live, int *row_clip) {
    int r = 0;
    for (int c = 0; c < n_clips; c++) {
        n_live[c] = irand(5) == 0 ? 0 : 1 + irand(K);
        row_off[c] = r;
        for (int j = 0; j < n_live[c]; j++) row_clip[r + j] = c;
        r += n_live[c];
    }
    return r;
}

static void test_self(int n_clips, int K, int D, int H, int step, int max_steps) {
    const int max_rows = n_clips * K;
    int *row_off = malloc(sizeof(int) * n_clips), *n_live = malloc(sizeof(int) * n_clips);
    int *row_clip = malloc(sizeof(int) * max_rows), *written = calloc((size_t)max_rows, sizeof(int));
    const int rows = make_rows(n_clips, K, row_off, n_live, row_clip);
    for (int r = 0; r < rows; r++) written[r] = 1;
    float *qkv = malloc(sizeof(float) * (size_t)max_rows * 3 * D);
    float *cache = malloc(sizeof(float) * (size_t)max_steps * max_rows * 2 * D);
    int *anc = malloc(sizeof(int) * (size_t)max_rows * max_steps);
    for (size_t i = 0; i < (size_t)max_rows * 3 * D; i++) qkv[i] = frand();
    for (size_t i = 0; i < (size_t)max_steps * max_rows * 2 * D; i++) cache[i] = frand();
    for (size_t i = 0; i < (size_t)max_rows * max_steps; i++) anc[i] = irand(max_rows);
    float *ref = calloc((size_t)max_rows * D, sizeof(float)), *got = malloc(sizeof(float) * (size_t)max_rows * D);
    float *k = malloc(sizeof(float) * (size_t)(step + 1) * D), *v = malloc(sizeof(float) * (size_t)(step + 1) * D);
    for (int r = 0; r < rows; r++) {
        for (int t = 0; t <= step; t++) {
            const float *src = t == step ? qkv + (size_t)r * 3 * D + D
                                         : cache + ((size_t)t * max_rows + anc[(size_t)r * max_steps + t]) * 2 * D;
            memcpy(k + (size_t)t * D, src, sizeof(float) * D);
            memcpy(v + (size_t)t * D, src + D, sizeof(float) * D);  // v follows k in both layouts
        }
        ref_attend(qkv + (size_t)r * 3 * D, k, v, step + 1, step + 1, D, H, ref + (size_t)r * D);
    }
    float *d_qkv = dev_copy(qkv, sizeof(float) * (size_t)max_rows * 3 * D);
    float *d_cache = dev_copy(cache, sizeof(float) * (size_t)max_steps * max_rows * 2 * D);
    int *d_anc = dev_copy(anc, sizeof(int) * (size_t)max_rows * max_steps);
    int *d_off = dev_copy(row_off, sizeof(int) * n_clips), *d_live = dev_copy(n_live, sizeof(int) * n_clips);
    float *d_out = dev_nan((size_t)max_rows * D);
    char what[128];
    snprintf(what, sizeof what, "self-attention clips %d beam %d D %d heads %d step %d", n_clips, K, D, H, step);
    CHECK(d_qkv && d_cache && d_anc && d_off && d_live && d_out, "cudaMalloc");
    if (d_qkv && d_cache && d_anc && d_off && d_live && d_out) {
        CHECK_OK(ac_gpu_attention_self(d_qkv, d_cache, d_anc, step, max_steps, d_off, d_live, n_clips, max_rows, D, H,
                                       d_out, 0));
        to_host(got, d_out, sizeof(float) * (size_t)max_rows * D);
        compare_rows(what, W_SELF, ref, got, written, max_rows, D, TOL_GPU_ATTN_REL);
        // the step's k | v stored at cache[step][r], anc[r][step] = r, for live rows only
        float *c2 = malloc(sizeof(float) * (size_t)max_steps * max_rows * 2 * D);
        int *a2 = malloc(sizeof(int) * (size_t)max_rows * max_steps);
        to_host(c2, d_cache, sizeof(float) * (size_t)max_steps * max_rows * 2 * D);
        to_host(a2, d_anc, sizeof(int) * (size_t)max_rows * max_steps);
        int bad = 0;
        for (int r = 0; r < max_rows; r++) {
            const float *want = written[r] ? qkv + (size_t)r * 3 * D + D : cache + ((size_t)step * max_rows + r) * 2 * D;
            if (memcmp(c2 + ((size_t)step * max_rows + r) * 2 * D, want, sizeof(float) * 2 * D)) bad++;
            if (a2[(size_t)r * max_steps + step] != (written[r] ? r : anc[(size_t)r * max_steps + step])) bad++;
        }
        CHECK(!bad, "%s: %d rows with a wrong cache entry or ancestor", what, bad);
        checks++;
        free(c2);
        free(a2);
    }
    cudaFree(d_qkv);
    cudaFree(d_cache);
    cudaFree(d_anc);
    cudaFree(d_off);
    cudaFree(d_live);
    cudaFree(d_out);
    free(row_off);
    free(n_live);
    free(row_clip);
    free(written);
    free(qkv);
    free(cache);
    free(anc);
    free(ref);
    free(got);
    free(k);
    free(v);
}

static void test_cross(int n_clips, int K, int D, int H, int max_frames) {
    const int max_rows = n_clips * K;
    int *row_off = malloc(sizeof(int) * n_clips), *n_live = malloc(sizeof(int) * n_clips);
    int *row_clip = malloc(sizeof(int) * max_rows), *written = calloc((size_t)max_rows, sizeof(int));
    int *nf = malloc(sizeof(int) * n_clips), *ml = malloc(sizeof(int) * n_clips), *off = malloc(sizeof(int) * n_clips);
    const int rows = make_rows(n_clips, K, row_off, n_live, row_clip);
    for (int r = 0; r < rows; r++) written[r] = 1;
    int total = 0, max_len = 1;
    for (int c = 0; c < n_clips; c++) {
        nf[c] = 1 + irand(max_frames);
        ml[c] = irand(3) == 0 ? nf[c] : 1 + irand(nf[c]);
        off[c] = total;
        total += nf[c];
        if (ml[c] > max_len) max_len = ml[c];
    }
    float *q = malloc(sizeof(float) * (size_t)max_rows * D), *kv = malloc(sizeof(float) * (size_t)total * 2 * D);
    for (size_t i = 0; i < (size_t)max_rows * D; i++) q[i] = 2 * frand();
    for (size_t i = 0; i < (size_t)total * 2 * D; i++) kv[i] = 2 * frand();
    float *ref = calloc((size_t)max_rows * D, sizeof(float)), *got = malloc(sizeof(float) * (size_t)max_rows * D);
    float *k = malloc(sizeof(float) * (size_t)max_frames * D), *v = malloc(sizeof(float) * (size_t)max_frames * D);
    for (int r = 0; r < rows; r++) {
        const int c = row_clip[r];
        for (int f = 0; f < nf[c]; f++) {
            memcpy(k + (size_t)f * D, kv + ((size_t)off[c] + f) * 2 * D, sizeof(float) * D);
            memcpy(v + (size_t)f * D, kv + ((size_t)off[c] + f) * 2 * D + D, sizeof(float) * D);
        }
        ref_attend(q + (size_t)r * D, k, v, nf[c], ml[c], D, H, ref + (size_t)r * D);
    }
    float *d_q = dev_copy(q, sizeof(float) * (size_t)max_rows * D);
    float *d_kv = dev_copy(kv, sizeof(float) * (size_t)total * 2 * D);
    int *d_off = dev_copy(off, sizeof(int) * n_clips), *d_ml = dev_copy(ml, sizeof(int) * n_clips);
    int *d_roff = dev_copy(row_off, sizeof(int) * n_clips), *d_live = dev_copy(n_live, sizeof(int) * n_clips);
    float *d_out = dev_nan((size_t)max_rows * D);
    char what[128];
    snprintf(what, sizeof what, "cross-attention clips %d beam %d D %d heads %d frames <= %d", n_clips, K, D, H,
             max_frames);
    CHECK(d_q && d_kv && d_off && d_ml && d_roff && d_live && d_out, "cudaMalloc");
    if (d_q && d_kv && d_off && d_ml && d_roff && d_live && d_out) {
        CHECK_OK(ac_gpu_attention_cross(d_q, d_kv, d_off, d_ml, max_len, d_roff, d_live, n_clips, D, H, d_out, 0));
        to_host(got, d_out, sizeof(float) * (size_t)max_rows * D);
        compare_rows(what, W_CROSS, ref, got, written, max_rows, D, TOL_GPU_ATTN_REL);
    }
    cudaFree(d_q);
    cudaFree(d_kv);
    cudaFree(d_off);
    cudaFree(d_ml);
    cudaFree(d_roff);
    cudaFree(d_live);
    cudaFree(d_out);
    free(row_off);
    free(n_live);
    free(row_clip);
    free(written);
    free(nf);
    free(ml);
    free(off);
    free(q);
    free(kv);
    free(ref);
    free(got);
    free(k);
    free(v);
}

// bf16: 0 FP32, 1 bf16 operands, 2 the split product (W_hi, W_lo from ac_gpu_bf16_split_lo, against the unrounded
// FP32 reference)
static void test_linear(int M_max, int M, int K, int N, int gelu, int bf16) {
    float *x = malloc(sizeof(float) * (size_t)M_max * K), *W = malloc(sizeof(float) * (size_t)N * K);
    float *b = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * (size_t)M_max * N);
    float *got = malloc(sizeof(float) * (size_t)M_max * N);
    uint16_t *Wb = malloc(sizeof(uint16_t) * (size_t)N * K);
    int *written = malloc(sizeof(int) * M_max);
    for (size_t i = 0; i < (size_t)M_max * K; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = frand() / sqrtf((float)K);
    for (int i = 0; i < N; i++) b[i] = frand();
    for (int r = 0; r < M_max; r++) written[r] = r < M;
    if (bf16 == 2)  // hi only: the reference keeps W and x as they are
        for (size_t i = 0; i < (size_t)N * K; i++) {
            const float h = ac_bf16_round(W[i]);
            uint32_t u;
            memcpy(&u, &h, 4);
            Wb[i] = (uint16_t)(u >> 16);
        }
    if (bf16 == 1) {  // the reference: bf16-rounded operands, exact products, fp32-scale sums
        for (size_t i = 0; i < (size_t)N * K; i++) {
            W[i] = ac_bf16_round(W[i]);
            uint32_t u;
            memcpy(&u, &W[i], 4);
            Wb[i] = (uint16_t)(u >> 16);
        }
    }
    float *xr = malloc(sizeof(float) * (size_t)M_max * K);
    for (size_t i = 0; i < (size_t)M_max * K; i++) xr[i] = bf16 == 1 ? ac_bf16_round(x[i]) : x[i];
    ref_linear_rows(xr, M, K, W, b, N, ref);
    if (gelu) ref_gelu_erf(ref, (int64_t)M * N);
    float *d_x = dev_copy(x, sizeof(float) * (size_t)M_max * K), *d_W = dev_copy(W, sizeof(float) * (size_t)N * K);
    void *d_Wb = bf16 ? dev_copy(Wb, sizeof(uint16_t) * (size_t)N * K) : NULL, *d_Wl = NULL;
    if (bf16 == 2 && d_W && d_Wb) {  // W_lo on the device, checked against the host's bf16(W - W_hi)
        CHECK(cudaMalloc(&d_Wl, sizeof(uint16_t) * (size_t)N * K) == cudaSuccess, "cudaMalloc");
        CHECK_OK(ac_gpu_bf16_split_lo(d_W, d_Wb, (int64_t)N * K, d_Wl, 0));
        uint16_t *lo = malloc(sizeof(uint16_t) * (size_t)N * K);
        to_host(lo, d_Wl, sizeof(uint16_t) * (size_t)N * K);
        size_t bad = 0;
        for (size_t i = 0; i < (size_t)N * K; i++) {
            uint32_t u = (uint32_t)Wb[i] << 16;
            float h, got_lo;
            memcpy(&h, &u, 4);
            const float want = ac_bf16_round(W[i] - h);
            u = (uint32_t)lo[i] << 16;
            memcpy(&got_lo, &u, 4);
            bad += memcmp(&want, &got_lo, 4) != 0;
        }
        checks++;
        CHECK(!bad, "bf16 split of a %d x %d matrix: %zu of W_lo's elements differ from bf16(W - W_hi)", N, K, bad);
        free(lo);
    }
    const char *kind = bf16 == 2 ? "split" : bf16 ? "bf16" : "fp32";
    const int wk = bf16 == 2 ? W_LINSPLIT : bf16 ? W_LIN16 : W_LIN32;
    const double tol = bf16 == 2 ? TOL_GPU_LINEAR_SPLIT_REL : bf16 ? TOL_GPU_LINEAR_BF16_REL : TOL_GPU_LINEAR_REL;
    float *d_b = dev_copy(b, sizeof(float) * N), *d_y = dev_nan((size_t)M_max * N);
    int *d_M = dev_copy(&M, sizeof(int));
    char what[128];
    snprintf(what, sizeof what, "linear %s M %d/%d K %d N %d gelu %d", kind, M, M_max, K, N, gelu);
    CHECK(d_x && d_W && d_b && d_y && d_M && (!bf16 || d_Wb) && (bf16 != 2 || d_Wl), "cudaMalloc");
    if (d_x && d_W && d_b && d_y && d_M && (!bf16 || d_Wb) && (bf16 != 2 || d_Wl)) {
        CHECK_OK(ac_gpu_linear(d_x, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, gelu, d_y, 0));
        to_host(got, d_y, sizeof(float) * (size_t)M_max * N);
        compare_rows(what, wk, ref, got, written, M_max, N, tol);
        // batch invariance: the first row computed alone is bit-identical
        if (M > 1) {
            float *one = malloc(sizeof(float) * N);
            int m1 = 1;
            CHECK(cudaMemcpy(d_M, &m1, sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess, "copy");
            CHECK_OK(ac_gpu_linear(d_x, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, gelu, d_y, 0));
            to_host(one, d_y, sizeof(float) * N);
            CHECK(!memcmp(one, got, sizeof(float) * N), "%s: row 0 alone differs from row 0 in the batch", what);
            checks++;
            free(one);
        }
        if (bf16) {  // both tiles the launcher picks from (AC_LINEAR_TILE forces one) give the same bits
            float *t[2] = {malloc(sizeof(float) * (size_t)M_max * N), malloc(sizeof(float) * (size_t)M_max * N)};
            const char *tiles[2] = {"64", "32"};
            CHECK(cudaMemcpy(d_M, &M, sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess, "copy");
            for (int k = 0; k < 2; k++) {
                setenv("AC_LINEAR_TILE", tiles[k], 1);
                CHECK(cudaMemset(d_y, 0xff, sizeof(float) * (size_t)M_max * N) == cudaSuccess, "memset");
                CHECK_OK(ac_gpu_linear(d_x, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, gelu, d_y, 0));
                to_host(t[k], d_y, sizeof(float) * (size_t)M_max * N);
            }
            unsetenv("AC_LINEAR_TILE");
            checks++;
            CHECK(!memcmp(t[0], t[1], sizeof(float) * (size_t)M_max * N), "%s: the 32 x 32 tile differs from 64 x 64",
                  what);
            free(t[0]);
            free(t[1]);
        }
        // rows in several launches when one grid cannot hold them (ac_gpu_linear_grid with a limit of one row
        // tile per launch; AC_LINEAR_TILE=32 for BF16, FP32 tiles are 64): the same bits as one launch; with d_M
        // the grid must cover M_max, so beyond one tile the call is refused
        if (M > 32) {
            float *t[2] = {malloc(sizeof(float) * (size_t)M * N), malloc(sizeof(float) * (size_t)M * N)};
            setenv("AC_LINEAR_TILE", "32", 1);
            for (int k = 0; k < 2; k++) {
                CHECK(cudaMemset(d_y, 0xff, sizeof(float) * (size_t)M_max * N) == cudaSuccess, "memset");
                CHECK_OK(ac_gpu_linear_grid(d_x, M, NULL, K, d_W, d_Wb, d_Wl, d_b, N, gelu, d_y, 0, k ? 1 : 65535));
                to_host(t[k], d_y, sizeof(float) * (size_t)M * N);
            }
            checks++;
            CHECK(!memcmp(t[0], t[1], sizeof(float) * (size_t)M * N), "%s: %d rows in launches of one row tile "
                  "differ from one launch", what, M);
            if (M_max > 64) {  // beyond one tile of either size
                checks++;
                CHECK(ac_gpu_linear_grid(d_x, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, gelu, d_y, 0, 1) ==
                          AC_ERR_INVALID_ARG, "%s: device row count beyond one grid accepted", what);
            }
            unsetenv("AC_LINEAR_TILE");
            free(t[0]);
            free(t[1]);
        }
    }
    cudaFree(d_x);
    cudaFree(d_W);
    cudaFree(d_Wb);
    cudaFree(d_Wl);
    cudaFree(d_b);
    cudaFree(d_y);
    cudaFree(d_M);
    free(x);
    free(xr);
    free(W);
    free(Wb);
    free(b);
    free(ref);
    free(got);
    free(written);
}

static void test_add_ln(int max_rows, int rows, int D) {
    float *x = malloc(sizeof(float) * (size_t)max_rows * D), *y = malloc(sizeof(float) * (size_t)max_rows * D);
    float *w = malloc(sizeof(float) * D), *b = malloc(sizeof(float) * D), *ref = malloc(sizeof(float) * (size_t)max_rows * D);
    float *got = malloc(sizeof(float) * (size_t)max_rows * D);
    int *written = malloc(sizeof(int) * max_rows);
    for (size_t i = 0; i < (size_t)max_rows * D; i++) {
        x[i] = 3 * frand() + 1;
        y[i] = frand();
    }
    for (int i = 0; i < D; i++) {
        w[i] = 1 + frand() / 2;
        b[i] = frand() / 2;
    }
    for (int r = 0; r < max_rows; r++) written[r] = r < rows;
    for (size_t i = 0; i < (size_t)rows * D; i++) ref[i] = x[i] + y[i];
    ref_layernorm(ref, rows, D, w, b, 1e-5f);
    float *xn = malloc(sizeof(float) * (size_t)max_rows * D);
    for (size_t i = 0; i < (size_t)max_rows * D; i++) xn[i] = i < (size_t)rows * D ? x[i] : NAN;
    float *d_x = dev_copy(xn, sizeof(float) * (size_t)max_rows * D), *d_y = dev_copy(y, sizeof(float) * (size_t)max_rows * D);
    float *d_w = dev_copy(w, sizeof(float) * D), *d_b = dev_copy(b, sizeof(float) * D);
    int *d_rows = dev_copy(&rows, sizeof(int));
    char what[96];
    snprintf(what, sizeof what, "add+layernorm rows %d/%d D %d", rows, max_rows, D);
    if (d_x && d_y && d_w && d_b && d_rows) {
        CHECK_OK(ac_gpu_add_layernorm(d_x, d_y, max_rows, d_rows, D, d_w, d_b, 1e-5f, 0));
        to_host(got, d_x, sizeof(float) * (size_t)max_rows * D);
        compare_rows(what, W_LN, ref, got, written, max_rows, D, TOL_GPU_LN_REL);
    } else
        CHECK(0, "cudaMalloc");
    cudaFree(d_x);
    cudaFree(d_y);
    cudaFree(d_w);
    cudaFree(d_b);
    cudaFree(d_rows);
    free(x);
    free(xn);
    free(y);
    free(w);
    free(b);
    free(ref);
    free(got);
    free(written);
}

// x = LayerNorm(x + in . W^T + b) through ac_gpu_linear_add_ln: prec 0 FP32 (the two-launch path with scratch),
// 1 bf16 operands, 2 the split product; whichever path ac_gpu_linear_add_ln_path names for the shape (BF16: fused
// at N = 256 and K <= 512, split-K past 512, else two launches), checked against the reference and against the
// two launches (AC_LINEAR_LN=0): the fused path up to a last-bit statistic, split-K within the budget (another
// order of the k sums)
static void test_linear_ln(int M_max, int M, int K, int N, int prec) {
    const float eps = 1e-5f;
    const size_t nin = (size_t)M_max * K, nx = (size_t)M_max * N, nw = (size_t)N * K;
    float *in = malloc(sizeof(float) * nin), *W = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * N);
    float *lw = malloc(sizeof(float) * N), *lb = malloc(sizeof(float) * N), *x0 = malloc(sizeof(float) * nx);
    float *ref = calloc(nx, sizeof(float)), *got = malloc(sizeof(float) * nx), *two = malloc(sizeof(float) * nx);
    uint16_t *Wb = malloc(sizeof(uint16_t) * nw);
    int *written = malloc(sizeof(int) * M_max);
    for (size_t i = 0; i < nin; i++) in[i] = frand();
    for (size_t i = 0; i < nw; i++) W[i] = frand() / sqrtf((float)K);
    for (int i = 0; i < N; i++) {
        b[i] = frand();
        lw[i] = 1 + frand() / 2;
        lb[i] = frand() / 2;
    }
    for (size_t i = 0; i < nx; i++) x0[i] = i < (size_t)M * N ? 3 * frand() + 1 : NAN;  // rows past M stay NaN
    for (int r = 0; r < M_max; r++) written[r] = r < M;
    for (size_t i = 0; i < nw && prec; i++) {  // bf16 hi; plain bf16 rounds the reference's operands too
        const float h = ac_bf16_round(W[i]);
        uint32_t u;
        memcpy(&u, &h, 4);
        Wb[i] = (uint16_t)(u >> 16);
        if (prec == 1) W[i] = h;
    }
    float *inr = malloc(sizeof(float) * nin);
    for (size_t i = 0; i < nin; i++) inr[i] = prec == 1 ? ac_bf16_round(in[i]) : in[i];
    ref_linear_rows(inr, M, K, W, b, N, ref);
    for (size_t i = 0; i < (size_t)M * N; i++) ref[i] += x0[i];
    ref_layernorm(ref, M, N, lw, lb, eps);
    float *d_in = dev_copy(in, sizeof(float) * nin), *d_W = dev_copy(W, sizeof(float) * nw);
    float *d_b = dev_copy(b, sizeof(float) * N), *d_lw = dev_copy(lw, sizeof(float) * N);
    float *d_lb = dev_copy(lb, sizeof(float) * N), *d_x = dev_copy(x0, sizeof(float) * nx);
    void *d_Wb = prec ? dev_copy(Wb, sizeof(uint16_t) * nw) : NULL, *d_Wl = NULL;
    const size_t ns = ac_gpu_linear_add_ln_scratch(prec ? (const void *)Wb : NULL, M_max, N, K);  // (a non-NULL W)
    float *d_s = dev_nan(ns);
    int *d_M = dev_copy(&M, sizeof(int));
    if (prec == 2 && d_W && d_Wb && cudaMalloc(&d_Wl, sizeof(uint16_t) * nw) == cudaSuccess)
        CHECK_OK(ac_gpu_bf16_split_lo(d_W, d_Wb, (int64_t)nw, d_Wl, 0));
    char what[128];
    const ac_lin_ln_path path = ac_gpu_linear_add_ln_path(d_Wb, N, K);
    const char *pname[3] = {"two launches", "fused", "split-K"};
    snprintf(what, sizeof what, "linear+layernorm %s M %d/%d K %d N %d (%s)", prec == 2 ? "split" : prec ? "bf16" : "fp32",
             M, M_max, K, N, pname[path]);
    const int ok = d_in && d_W && d_b && d_lw && d_lb && d_x && d_s && d_M && (!prec || d_Wb) && (prec != 2 || d_Wl);
    CHECK(ok, "cudaMalloc");
    if (ok) {
        CHECK_OK(ac_gpu_linear_add_ln(d_in, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, d_x, d_lw, d_lb, eps, d_s, 0));
        to_host(got, d_x, sizeof(float) * nx);
        compare_rows(what, W_LINLN, ref, got, written, M_max, N,
                     prec == 2 ? TOL_GPU_LINEAR_SPLIT_REL : prec ? TOL_GPU_LINEAR_BF16_REL : TOL_GPU_LINEAR_REL);
        // the two launches (AC_LINEAR_LN=0): the fused path has the same pre-LN sums (at most a last-bit statistic
        // apart), split-K sums k in chunks (within the budget)
        setenv("AC_LINEAR_LN", "0", 1);
        CHECK(cudaMemcpy(d_x, x0, sizeof(float) * nx, cudaMemcpyHostToDevice) == cudaSuccess, "copy");
        CHECK_OK(ac_gpu_linear_add_ln(d_in, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, d_x, d_lw, d_lb, eps, d_s, 0));
        unsetenv("AC_LINEAR_LN");
        to_host(two, d_x, sizeof(float) * nx);
        float dmax = 0;
        size_t differ = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) {
            dmax = fmaxf(dmax, fabsf(got[i] - two[i]) / fmaxf(fabsf(two[i]), 1.0f));
            differ += got[i] != two[i];
        }
        const double lim = path == AC_LIN_LN_SPLITK ? (prec == 2 ? TOL_GPU_LINEAR_SPLIT_REL : TOL_GPU_LINEAR_BF16_REL)
                                                    : 4 * FLT_EPSILON;
        checks++;
        CHECK(dmax <= lim, "%s: %zu of %d values differ from the two launches, by up to %.2e (limit %.2e)", what,
              differ, M * N, dmax, lim);
        if (M > 1) {  // batch invariance: row 0 computed alone is bit-identical
            int m1 = 1;
            CHECK(cudaMemcpy(d_M, &m1, sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess, "copy");
            CHECK(cudaMemcpy(d_x, x0, sizeof(float) * nx, cudaMemcpyHostToDevice) == cudaSuccess, "copy");
            CHECK_OK(ac_gpu_linear_add_ln(d_in, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, d_x, d_lw, d_lb, eps, d_s, 0));
            to_host(two, d_x, sizeof(float) * N);
            checks++;
            CHECK(!memcmp(two, got, sizeof(float) * N), "%s: row 0 alone differs from row 0 in the batch", what);
        }
        if (path == AC_LIN_LN_SPLITK) {  // the split-K grid's two tiles give the same bits
            float *t32 = malloc(sizeof(float) * nx);
            int mm = M;
            CHECK(cudaMemcpy(d_M, &mm, sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess, "copy");
            for (int k = 0; k < 2; k++) {
                setenv("AC_LINEAR_TILE", k ? "32" : "64", 1);
                CHECK(cudaMemcpy(d_x, x0, sizeof(float) * nx, cudaMemcpyHostToDevice) == cudaSuccess, "copy");
                CHECK_OK(ac_gpu_linear_add_ln(d_in, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, d_x, d_lw, d_lb, eps, d_s,
                                              0));
                to_host(k ? t32 : two, d_x, sizeof(float) * nx);
            }
            unsetenv("AC_LINEAR_TILE");
            checks++;
            CHECK(!memcmp(t32, two, sizeof(float) * (size_t)M * N) && !memcmp(two, got, sizeof(float) * (size_t)M * N),
                  "%s: the 64 x 64 and 32 x 32 split-K tiles (or the launcher's choice) differ", what);
            free(t32);
        }
        if (path != AC_LIN_LN_FUSED) {  // the other paths need their scratch buffer
            checks++;
            CHECK(ac_gpu_linear_add_ln(d_in, M_max, d_M, K, d_W, d_Wb, d_Wl, d_b, N, d_x, d_lw, d_lb, eps, NULL, 0) ==
                      AC_ERR_INVALID_ARG, "%s: no scratch accepted", what);
        }
    }
    cudaFree(d_in);
    cudaFree(d_W);
    cudaFree(d_b);
    cudaFree(d_lw);
    cudaFree(d_lb);
    cudaFree(d_x);
    cudaFree(d_s);
    cudaFree(d_Wb);
    cudaFree(d_Wl);
    cudaFree(d_M);
    free(in);
    free(inr);
    free(W);
    free(b);
    free(lw);
    free(lb);
    free(x0);
    free(ref);
    free(got);
    free(two);
    free(Wb);
    free(written);
}

// dst[l][t][r] = src[l][t][src_row[r]] for r < rows, every other element untouched (NaN); exact copies
static void test_kv_gather(int layers, int steps, int max_rows, int rows, int width, int64_t pad) {
    const int64_t stride = (int64_t)steps * max_rows * width + pad;  // pad: a layer stride past the steps
    const size_t n = (size_t)(layers * stride);
    float *src = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    int *row = malloc(sizeof(int) * max_rows);
    for (size_t i = 0; i < n; i++) src[i] = frand();
    for (int r = 0; r < max_rows; r++) row[r] = irand(max_rows);
    float *d_src = dev_copy(src, sizeof(float) * n), *d_dst = dev_nan(n);
    int *d_row = dev_copy(row, sizeof(int) * max_rows), *d_rows = dev_copy(&rows, sizeof(int));
    CHECK(d_src && d_dst && d_row && d_rows, "cudaMalloc");
    if (d_src && d_dst && d_row && d_rows) {
        CHECK_OK(ac_gpu_kv_cache_gather(d_src, d_dst, layers, stride, steps, max_rows, width, d_row, d_rows, 0));
        to_host(got, d_dst, sizeof(float) * n);
        size_t bad = 0;
        for (int l = 0; l < layers; l++)
            for (int t = 0; t < steps; t++)
                for (int r = 0; r < max_rows; r++)
                    for (int i = 0; i < width; i++) {
                        const size_t o = (size_t)(l * stride + ((int64_t)t * max_rows + r) * width + i);
                        const float g = got[o];
                        if (r < rows) bad += memcmp(&g, &src[(size_t)(l * stride + ((int64_t)t * max_rows + row[r]) *
                                                                                   width + i)], 4) != 0;
                        else bad += !isnan(g);
                    }
        checks += 2;
        CHECK(!bad, "kv cache gather %d layers x %d steps x %d/%d rows x %d: %zu elements wrong", layers, steps, rows,
              max_rows, width, bad);
        CHECK(ac_gpu_kv_cache_gather(d_src, d_src + 1, layers, stride, steps, max_rows, width, d_row, d_rows, 0) ==
                  AC_ERR_INVALID_ARG, "kv cache gather: overlapping buffers accepted");
    }
    cudaFree(d_src);
    cudaFree(d_dst);
    cudaFree(d_row);
    cudaFree(d_rows);
    free(src);
    free(got);
    free(row);
}

static void test_embed(int max_rows, int rows, int V, int D, int step) {
    int *tok = malloc(sizeof(int) * max_rows), *written = malloc(sizeof(int) * max_rows);
    float *emb = malloc(sizeof(float) * (size_t)V * D), *pos = malloc(sizeof(float) * (size_t)(step + 1) * D);
    float *ref = malloc(sizeof(float) * (size_t)max_rows * D), *got = malloc(sizeof(float) * (size_t)max_rows * D);
    for (int r = 0; r < max_rows; r++) {
        tok[r] = irand(V);
        written[r] = r < rows;
    }
    for (size_t i = 0; i < (size_t)V * D; i++) emb[i] = frand();
    for (size_t i = 0; i < (size_t)(step + 1) * D; i++) pos[i] = frand();
    const float scale = sqrtf((float)D);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < D; i++) ref[(size_t)r * D + i] = emb[(size_t)tok[r] * D + i] * scale + pos[(size_t)step * D + i];
    int *d_tok = dev_copy(tok, sizeof(int) * max_rows), *d_rows = dev_copy(&rows, sizeof(int));
    float *d_emb = dev_copy(emb, sizeof(float) * (size_t)V * D), *d_pos = dev_copy(pos, sizeof(float) * (size_t)(step + 1) * D);
    float *d_x = dev_nan((size_t)max_rows * D);
    char what[96];
    snprintf(what, sizeof what, "embedding rows %d/%d V %d D %d step %d", rows, max_rows, V, D, step);
    if (d_tok && d_rows && d_emb && d_pos && d_x) {
        CHECK_OK(ac_gpu_decoder_embed(d_tok, max_rows, d_rows, d_emb, V, d_pos, step, scale, D, d_x, 0));
        to_host(got, d_x, sizeof(float) * (size_t)max_rows * D);
        compare_rows(what, W_EMB, ref, got, written, max_rows, D, TOL_GPU_EMBED_REL);
    } else
        CHECK(0, "cudaMalloc");
    cudaFree(d_tok);
    cudaFree(d_rows);
    cudaFree(d_emb);
    cudaFree(d_pos);
    cudaFree(d_x);
    free(tok);
    free(written);
    free(emb);
    free(pos);
    free(ref);
    free(got);
}

int main(void) {
    int n = 0;
    if (ac_cuda_device_count(&n) != AC_OK || n == 0) {
        printf("test_cuda_attention: no CUDA device: skipped\n");
        return AC_SKIP;
    }
    const int dh[][2] = {{256, 8}, {256, 4}, {64, 2}, {48, 3}, {40, 1}, {512, 8}, {96, 6}};
    for (size_t i = 0; i < sizeof dh / sizeof dh[0]; i++) {
        const int D = dh[i][0], H = dh[i][1];
        for (int step = 0; step < 22; step += 1 + (int)i % 3) test_self(1 + irand(9), 1 + irand(6), D, H, step, 22);
        test_self(37, 3, D, H, 5, 6);
        test_self(3, 16, D, H, 40, 64);
        for (int f = 1; f <= 200; f = f * 3 + 1) test_cross(1 + irand(12), 1 + irand(5), D, H, f);
        test_cross(100, 3, D, H, 31);
    }
    // the decoder's shapes (M a few clips' beams; K, N of in_proj, linear1/2, the classifier) and odd ones. The
    // CPU stand-in (AC_TEST_SMALL=1, tests/emu-runtime) emulates every mma.sync, at a warp barrier each: there N
    // shrinks to a few tiles, still partial ones, and K keeps linear2's 2048 (64 k slices) and a scalar-load 17
    const int lin_gpu[][3] = {{1, 256, 256}, {7, 256, 768}, {63, 256, 2048}, {65, 2048, 256}, {130, 256, 4371},
                              {3, 17, 5},   {200, 100, 33}, {64, 64, 64},   {129, 512, 1000}};
    const int lin_small[][3] = {{1, 256, 40}, {7, 256, 72}, {63, 256, 136}, {65, 2048, 24}, {130, 256, 75},
                                {3, 17, 5},   {70, 100, 33}, {64, 64, 64}, {9, 512, 100}};
    _Static_assert(sizeof lin_gpu == sizeof lin_small, "one sweep, two sizes");
    const char *small = getenv("AC_TEST_SMALL");
    const int(*lin)[3] = small && small[0] == '1' ? lin_small : lin_gpu;
    for (size_t i = 0; i < sizeof lin_gpu / sizeof lin_gpu[0]; i++)
        for (int bf = 0; bf < 3; bf++)
            for (int gelu = 0; gelu < 2; gelu++) {
                const int Mx = lin[i][0];
                test_linear(Mx + irand(70), Mx, lin[i][1], lin[i][2], gelu, bf);
            }
    for (int D = 8; D <= 1024; D = D * 2 + 3) test_add_ln(50, 1 + irand(50), D);
    test_add_ln(1000, 997, 256);
    // linear + LayerNorm (M, M_max, K, N): out_proj and linear2 at a batch's 768 rows (a few under AC_TEST_SMALL),
    // one row, a partial 16-row block, scalar loads (K = 300), and an N the fused kernel does not take
    // split-K: linear2's 2048, a partial last chunk (1000), scalar loads (1100), another width
    const int lnc_gpu[][4] = {{768, 800, 256, 256}, {700, 768, 2048, 256}, {1, 1, 256, 256}, {17, 40, 300, 256},
                              {9, 20, 64, 200},     {100, 128, 1000, 256}, {33, 40, 1100, 200}};
    const int lnc_small[][4] = {{40, 48, 256, 256}, {20, 32, 2048, 256}, {1, 1, 256, 256}, {17, 40, 300, 256},
                                {9, 20, 64, 200},   {10, 16, 1000, 256}, {5, 8, 1100, 72}};
    _Static_assert(sizeof lnc_gpu == sizeof lnc_small, "one sweep, two sizes");
    const int(*lnc)[4] = small && small[0] == '1' ? lnc_small : lnc_gpu;
    for (size_t i = 0; i < sizeof lnc_gpu / sizeof lnc_gpu[0]; i++)
        for (int prec = 0; prec < 3; prec++) test_linear_ln(lnc[i][1], lnc[i][0], lnc[i][2], lnc[i][3], prec);
    test_kv_gather(6, 20, 96, 90, 512, 0);  // the decoder's width (2 d_model), float4 copies
    test_kv_gather(2, 5, 33, 7, 6, 4);      // width 6: scalar copies; a padded layer stride
    test_kv_gather(1, 1, 5, 0, 8, 0);       // no live rows: nothing written
    test_embed(30, 17, 4371, 256, 0);
    test_embed(30, 30, 101, 37, 19);
    const char *names[] = {"self-attention", "cross-attention", "linear fp32", "linear bf16", "linear split",
                           "add+layernorm", "embedding", "linear+layernorm"};
    for (int i = 0; i <= W_LINLN; i++) printf("  worst %-16s %5.1f %% of its budget\n", names[i], 100 * worst[i]);
    return test_finish("test_cuda_attention", checks);
}
