// CPU run of the decoder's per-step kernels' own source under tests/emu/emu_rt.h, launched as their .cu
// launchers launch them, against host/ref/ref_ops.c (the cases of tests/test_cuda_attention.c at emulation-friendly
// sizes):
//   kernels/decoder_linear_kernel.cuh  FP32 tiles and BF16 mma.sync tiles (cp.async and scalar loads), with and
//                                      without GELU, rows read from a device count (partial tiles in M, N, K),
//                                      batch invariance (row 0 alone bit-identical to row 0 in the batch);
//   kernels/decoder_add_ln_kernel.cuh  residual add + LayerNorm on the live rows;
//   linear_ln_kernel                   the linear with that LayerNorm in its epilogue (N = 256, BF16 and split,
//                                      cp.async and scalar loads): against the reference and against the
//                                      two-launch path (linear, then add+LN) it replaces, batch invariance;
//   split-K (linear2's path)           the BF16 tile with a chunk of 512 k per grid.z into partial sums, then add_ln_kernel
//                                      summing them with the bias (against the reference, both tiles' bits,
//                                      batch invariance);
//   kernels/decoder_embed_kernel.cuh   embedding * scale + position, NaN rows for out-of-range tokens.
// Outputs start as NaN: rows past the live count must stay NaN, live rows must be written. Errors are
// max |emu - ref| / max |ref| as a share of the tests/tolerances.h budgets of the GPU tests. The emulated mma.sync
// sums each 16-deep step in double (the hardware's internal order is unspecified), so the BF16 budget holds here
// with margin; what this test checks is the tiling and indexing, not the tensor cores' rounding.
#include "emu_rt.h"
#include "emu_pipeline.h"

#include <cfloat>

extern "C" {
#include "../../host/ref/ref_ops.h"
// ref_ops.c's encoder GEMM calls OpenBLAS; nothing here uses it
void cblas_sgemm() { abort(); }
}
#include "../tolerances.h"

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#include "../../kernels/gelu.cuh"
#include "../../kernels/mma_16816.cuh"
#include "../../kernels/decoder_linear_kernel.cuh"
#include "../../kernels/decoder_add_ln_kernel.cuh"
#include "../../kernels/decoder_embed_kernel.cuh"

#define EMU_SEED 4242
#include "emu_check.h"

enum { W_LIN32, W_LIN16, W_LINSPLIT, W_LN, W_EMB, W_LINLN, W_SPLITK };

// ac_gpu_linear's launch; tile: the BF16 tile edge (64 or 32, the launcher's two choices); W_lo: the split product
static void launch_linear(const float *x, int M_max, const int *d_M, int K, const float *W, const void *W_bf16,
                          const void *W_lo, const float *b, int N, int gelu, float *y, int tile = 64) {
    if (W_bf16) {
        const int vec = K % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)W_bf16 % 16 == 0 && (uintptr_t)W_lo % 16 == 0;
        const emu_dim3 grid = {(unsigned)CEIL_DIV(N, tile), (unsigned)CEIL_DIV(M_max, tile), 1};
        const __nv_bfloat16 *wh = (const __nv_bfloat16 *)W_bf16, *wl = (const __nv_bfloat16 *)W_lo;
        auto go = [&](auto kern, size_t smem) {
            emu_launch(grid, {128, 1, 1}, smem, [&] { kern(x, M_max, d_M, K, K, wh, wl, b, N, gelu, y); });
        };
#define LIN(T, S, V) go(linear_bf16_kernel<T, T, S, V>, lin_mma<T, T, S>::SMEM)
        if (tile == 64) {
            if (wl) vec ? LIN(64, true, true) : LIN(64, true, false);
            else vec ? LIN(64, false, true) : LIN(64, false, false);
        } else {
            if (wl) vec ? LIN(32, true, true) : LIN(32, true, false);
            else vec ? LIN(32, false, true) : LIN(32, false, false);
        }
#undef LIN
    } else {
        const emu_dim3 grid = {(unsigned)CEIL_DIV(N, LIN_BN), (unsigned)CEIL_DIV(M_max, LIN_BM), 1};
        emu_launch(grid, {256, 1, 1}, 0, [&] { linear_f32_kernel(x, M_max, d_M, K, W, b, N, gelu, y); });
    }
}

static float bf16_round(float x) { return emu_bf2f(__float2bfloat16_rn(x)); }

// bf16: 0 FP32, 1 bf16 operands, 2 the split product (against the unrounded FP32 reference)
static void test_linear(int M_max, int M, int K, int N, int gelu, int bf16, bool use_dM = true) {
    std::vector<float> x((size_t)M_max * K), W((size_t)N * K), b(N), ref((size_t)M_max * N, 0.0f);
    std::vector<__nv_bfloat16> Wb((size_t)N * K), Wl((size_t)N * K);
    std::vector<int> written(M_max);
    for (auto &v : x) v = frand();
    for (auto &v : W) v = frand() / sqrtf((float)K);
    for (auto &v : b) v = frand();
    for (int r = 0; r < M_max; r++) written[r] = r < M;
    if (bf16)
        for (size_t i = 0; i < W.size(); i++) {
            Wb[i] = __float2bfloat16_rn(W[i]);
            Wl[i] = __float2bfloat16_rn(W[i] - emu_bf2f(Wb[i]));  // as ac_gpu_bf16_split_lo
            if (bf16 == 1) W[i] = emu_bf2f(Wb[i]);
        }
    std::vector<float> xr(x);
    if (bf16 == 1)
        for (auto &v : xr) v = bf16_round(v);
    const void *wb = bf16 ? Wb.data() : nullptr, *wl = bf16 == 2 ? Wl.data() : nullptr;
    const char *kind = bf16 == 2 ? "split" : bf16 ? "bf16" : "fp32";
    ref_linear_rows(xr.data(), M, K, W.data(), b.data(), N, ref.data());
    if (gelu) ref_gelu_erf(ref.data(), (int64_t)M * N);
    std::vector<float> y((size_t)M_max * N, NAN);
    int dM = M;
    launch_linear(x.data(), M_max, use_dM ? &dM : nullptr, K, W.data(), wb, wl, b.data(), N, gelu, y.data());
    char what[128];
    snprintf(what, sizeof what, "linear %s M %d/%d K %d N %d gelu %d", kind, M, M_max, K, N, gelu);
    compare_rows(what, bf16 == 2 ? W_LINSPLIT : bf16 ? W_LIN16 : W_LIN32, ref.data(), y.data(), written.data(), M_max,
                 N, bf16 == 2 ? TOL_GPU_LINEAR_SPLIT_REL : bf16 ? TOL_GPU_LINEAR_BF16_REL : TOL_GPU_LINEAR_REL);
    if (M > 1 && use_dM) {  // batch invariance: row 0 computed alone is bit-identical
        std::vector<float> one((size_t)M_max * N, NAN);
        int m1 = 1;
        launch_linear(x.data(), M_max, &m1, K, W.data(), wb, wl, b.data(), N, gelu, one.data());
        EXPECT(!memcmp(one.data(), y.data(), sizeof(float) * N), "%s: row 0 alone differs from row 0 in the batch", what);
    }
    if (bf16) {  // the 32 x 32 tile (small grids) gives the 64 x 64 tile's bits, rows past M untouched alike
        std::vector<float> y32((size_t)M_max * N, NAN);
        launch_linear(x.data(), M_max, use_dM ? &dM : nullptr, K, W.data(), wb, wl, b.data(), N, gelu, y32.data(), 32);
        EXPECT(!memcmp(y32.data(), y.data(), sizeof(float) * y.size()), "%s: the 32 x 32 tile differs from 64 x 64",
               what);
    }
}

static void test_add_ln(int max_rows, int rows, int D) {
    std::vector<float> x((size_t)max_rows * D), y((size_t)max_rows * D), w(D), b(D), ref((size_t)max_rows * D, 0.0f);
    std::vector<int> written(max_rows);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = 3 * frand() + 1;
        y[i] = frand();
    }
    for (int i = 0; i < D; i++) {
        w[i] = 1 + frand() / 2;
        b[i] = frand() / 2;
    }
    for (int r = 0; r < max_rows; r++) written[r] = r < rows;
    for (size_t i = 0; i < (size_t)rows * D; i++) ref[i] = x[i] + y[i];
    ref_layernorm(ref.data(), rows, D, w.data(), b.data(), 1e-5f);
    for (size_t i = (size_t)rows * D; i < x.size(); i++) x[i] = NAN;  // rows past the count: must stay as they are
    int d_rows = rows;
    emu_launch({(unsigned)CEIL_DIV(max_rows, 8), 1, 1}, {256, 1, 1}, 0,
               [&] { add_ln_kernel(x.data(), y.data(), 1, nullptr, max_rows, &d_rows, D, w.data(), b.data(), 1e-5f); });
    char what[96];
    snprintf(what, sizeof what, "add+layernorm rows %d/%d D %d", rows, max_rows, D);
    compare_rows(what, W_LN, ref.data(), x.data(), written.data(), max_rows, D, TOL_GPU_LN_REL);
}

// ac_gpu_linear_add_ln's one-launch path: x = LN(x + in . W^T + b) over the first *d_M of M_max rows, N = 256
static void launch_linear_ln(const float *in, int M_max, const int *d_M, int K, const __nv_bfloat16 *W,
                             const __nv_bfloat16 *W_lo, const float *b, float *x, const float *ln_w, const float *ln_b,
                             float eps) {
    const int vec = K % 8 == 0 && (uintptr_t)in % 16 == 0 && (uintptr_t)W % 16 == 0 && (uintptr_t)W_lo % 16 == 0;
    auto go = [&](auto kern, size_t smem) {
        emu_launch({(unsigned)CEIL_DIV(M_max, 16), 1, 1}, {256, 1, 1}, smem,
                   [&] { kern(in, M_max, d_M, K, W, W_lo, b, x, ln_w, ln_b, eps); });
    };
    if (W_lo) vec ? go(linear_ln_kernel<true, true>, lin_ln_cfg<true>::SMEM)
                  : go(linear_ln_kernel<true, false>, lin_ln_cfg<true>::SMEM);
    else vec ? go(linear_ln_kernel<false, true>, lin_ln_cfg<false>::SMEM)
             : go(linear_ln_kernel<false, false>, lin_ln_cfg<false>::SMEM);
}

// A sublayer end's inputs and its reference, x = LayerNorm(x0 + in . W^T + b): split, the split product's operands
// (else plain bf16, the reference on the rounded operands); rows past M hold NaN in x0 and must keep it.
struct ln_case {
    int M_max, M, K, N;
    bool split;
    std::vector<float> in, W, b, lw, lb, x0, ref;
    std::vector<__nv_bfloat16> Wb, Wl;
    std::vector<int> written;
    const __nv_bfloat16 *wl() const { return split ? Wl.data() : nullptr; }
    ln_case(int M_max_, int M_, int K_, int N_, bool split_)
        : M_max(M_max_), M(M_), K(K_), N(N_), split(split_), in((size_t)M_max * K), W((size_t)N * K), b(N), lw(N),
          lb(N), x0((size_t)M_max * N), ref((size_t)M_max * N, 0.0f), Wb((size_t)N * K), Wl((size_t)N * K),
          written(M_max) {
        for (auto &v : in) v = frand();
        for (auto &v : W) v = frand() / sqrtf((float)K);
        for (int i = 0; i < N; i++) {
            b[i] = frand();
            lw[i] = 1 + frand() / 2;
            lb[i] = frand() / 2;
        }
        for (auto &v : x0) v = 3 * frand() + 1;
        for (int r = 0; r < M_max; r++) written[r] = r < M;
        for (size_t i = (size_t)M * N; i < x0.size(); i++) x0[i] = NAN;
        for (size_t i = 0; i < W.size(); i++) {
            Wb[i] = __float2bfloat16_rn(W[i]);
            Wl[i] = __float2bfloat16_rn(W[i] - emu_bf2f(Wb[i]));
            if (!split) W[i] = emu_bf2f(Wb[i]);
        }
        std::vector<float> inr(in);
        if (!split)
            for (auto &v : inr) v = bf16_round(v);
        ref_linear_rows(inr.data(), M, K, W.data(), b.data(), N, ref.data());
        for (size_t i = 0; i < (size_t)M * N; i++) ref[i] += x0[i];
        ref_layernorm(ref.data(), M, N, lw.data(), lb.data(), 1e-5f);
    }
    void check(const char *what, int kind, const std::vector<float> &x) const {
        compare_rows(what, kind, ref.data(), x.data(), written.data(), M_max, N,
                     split ? TOL_GPU_LINEAR_SPLIT_REL : TOL_GPU_LINEAR_BF16_REL);
    }
};

static void test_linear_ln(int M_max, int M, int K, bool split) {
    const ln_case c(M_max, M, K, LIN_LN_N, split);
    const int N = c.N;
    std::vector<float> x(c.x0);
    int dM = M;
    launch_linear_ln(c.in.data(), M_max, &dM, K, c.Wb.data(), c.wl(), c.b.data(), x.data(), c.lw.data(), c.lb.data(),
                     1e-5f);
    char what[128];
    snprintf(what, sizeof what, "linear+layernorm %s M %d/%d K %d", split ? "split" : "bf16", M, M_max, K);
    c.check(what, W_LINLN, x);
    // the two launches it replaces: the same pre-LN sums, so at most a last-bit difference in a statistic
    std::vector<float> y((size_t)M_max * N, NAN), x2(c.x0);
    launch_linear(c.in.data(), M_max, &dM, K, c.W.data(), c.Wb.data(), c.wl(), c.b.data(), N, 0, y.data(), 32);
    emu_launch({(unsigned)CEIL_DIV(M_max, 8), 1, 1}, {256, 1, 1}, 0, [&] {
        add_ln_kernel(x2.data(), y.data(), 1, nullptr, M_max, &dM, N, c.lw.data(), c.lb.data(), 1e-5f);
    });
    float worst = 0;
    size_t differ = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) {
        const float d = fabsf(x[i] - x2[i]) / fmaxf(fabsf(x2[i]), 1.0f);
        worst = fmaxf(worst, d);
        differ += x[i] != x2[i];
    }
    EXPECT(worst <= 4 * FLT_EPSILON, "%s: %zu of %d values differ from linear + add_ln, by up to %.2e", what, differ,
           M * N, worst);
    if (M > 1) {  // batch invariance: row 0 computed alone is bit-identical
        std::vector<float> one(c.x0);
        int m1 = 1;
        launch_linear_ln(c.in.data(), M_max, &m1, K, c.Wb.data(), c.wl(), c.b.data(), one.data(), c.lw.data(),
                         c.lb.data(), 1e-5f);
        EXPECT(!memcmp(one.data(), x.data(), sizeof(float) * N), "%s: row 0 alone differs from row 0 in the batch",
               what);
    }
}

// ac_gpu_linear_add_ln's split-K path: the linear tile (edge `tile`) with a chunk of k per grid.z writing partial
// sums, then add_ln_kernel summing them with the bias
static void run_splitk_ln(const ln_case &c, const int *d_M, std::vector<float> &x, int tile) {
    const int chunks = CEIL_DIV(c.K, LIN_SPLITK_CHUNK);
    std::vector<float> part((size_t)chunks * c.M_max * c.N, NAN);
    const int vec = c.K % 8 == 0;
    const emu_dim3 grid = {(unsigned)CEIL_DIV(c.N, tile), (unsigned)CEIL_DIV(c.M_max, tile), (unsigned)chunks};
    auto go = [&](auto kern, size_t smem) {
        emu_launch(grid, {128, 1, 1}, smem, [&] {
            kern(c.in.data(), c.M_max, d_M, c.K, LIN_SPLITK_CHUNK, c.Wb.data(), c.wl(), nullptr, c.N, 0, part.data());
        });
    };
#define SK(T, S, V) go(linear_bf16_kernel<T, T, S, V>, lin_mma<T, T, S>::SMEM)
    if (tile == 64) {
        if (c.split) vec ? SK(64, true, true) : SK(64, true, false);
        else vec ? SK(64, false, true) : SK(64, false, false);
    } else {
        if (c.split) vec ? SK(32, true, true) : SK(32, true, false);
        else vec ? SK(32, false, true) : SK(32, false, false);
    }
#undef SK
    emu_launch({(unsigned)CEIL_DIV(c.M_max, 8), 1, 1}, {256, 1, 1}, 0, [&] {
        add_ln_kernel(x.data(), part.data(), chunks, c.b.data(), c.M_max, d_M, c.N, c.lw.data(), c.lb.data(), 1e-5f);
    });
}

static void test_splitk_ln(int M_max, int M, int K, int N, bool split) {
    const ln_case c(M_max, M, K, N, split);
    std::vector<float> x(c.x0), x32(c.x0);
    int dM = M;
    run_splitk_ln(c, &dM, x, 64);
    char what[128];
    snprintf(what, sizeof what, "split-K linear+layernorm %s M %d/%d K %d N %d", split ? "split" : "bf16", M, M_max, K,
             N);
    c.check(what, W_SPLITK, x);
    run_splitk_ln(c, &dM, x32, 32);
    EXPECT(!memcmp(x32.data(), x.data(), sizeof(float) * x.size()), "%s: the 32 x 32 tile differs from 64 x 64", what);
    if (M > 1) {  // batch invariance: row 0 computed alone is bit-identical
        std::vector<float> one(c.x0);
        int m1 = 1;
        run_splitk_ln(c, &m1, one, 64);
        EXPECT(!memcmp(one.data(), x.data(), sizeof(float) * N), "%s: row 0 alone differs from row 0 in the batch",
               what);
    }
}

static void test_embed(int max_rows, int rows, int V, int D, int step, bool bad_token) {
    std::vector<int> tok(max_rows), written(max_rows);
    std::vector<float> emb((size_t)V * D), pos((size_t)(step + 1) * D), ref((size_t)max_rows * D, 0.0f);
    for (int r = 0; r < max_rows; r++) {
        tok[r] = irand(V);
        written[r] = r < rows;
    }
    if (bad_token) tok[rows / 2] = rows & 1 ? V : -1;
    for (auto &v : emb) v = frand();
    for (auto &v : pos) v = frand();
    const float scale = sqrtf((float)D);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < D; i++)
            ref[(size_t)r * D + i] = tok[r] < 0 || tok[r] >= V ? NAN
                                                               : emb[(size_t)tok[r] * D + i] * scale + pos[(size_t)step * D + i];
    std::vector<float> x((size_t)max_rows * D, NAN);
    int d_rows = rows;
    emu_launch({(unsigned)max_rows, 1, 1}, {128, 1, 1}, 0, [&] {
        decoder_embed_kernel(tok.data(), max_rows, &d_rows, emb.data(), V, pos.data() + (size_t)step * D, scale, D,
                             x.data());
    });
    char what[96];
    snprintf(what, sizeof what, "embedding rows %d/%d V %d D %d step %d", rows, max_rows, V, D, step);
    compare_rows(what, W_EMB, ref.data(), x.data(), written.data(), max_rows, D, TOL_GPU_EMBED_REL);
    if (bad_token) {
        int nan_ok = 1;
        for (int i = 0; i < D; i++) nan_ok &= std::isnan(x[(size_t)(rows / 2) * D + i]);
        EXPECT(nan_ok, "%s: a token outside the vocabulary did not give a NaN row", what);
    }
}

int main() {
    // (M, K, N): the decoder's shapes scaled down, partial tiles in every dimension, K not a multiple of 8
    // (scalar loads) or of 16 (zero-padded k steps), and many 32-deep k slices of the BF16 kernel's 3-stage ring:
    // whole (256, linear2's 2048), a partial last one with cp.async (264) and with scalar loads (300)
    const int lin[][3] = {{1, 64, 64}, {7, 96, 136}, {65, 48, 70}, {3, 17, 5}, {20, 100, 33}, {64, 64, 64}, {66, 40, 8},
                          {5, 256, 40}, {9, 264, 20}, {4, 300, 17}, {3, 2048, 24}};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++)
        for (int bf = 0; bf < 3; bf++)
            for (int gelu = 0; gelu < 2; gelu++) {
                const int Mx = lin[i][0];
                test_linear(Mx + irand(40), Mx, lin[i][1], lin[i][2], gelu, bf);
            }
    test_linear(70, 70, 32, 65, 0, 0, false);  // d_M NULL: every row
    test_linear(70, 70, 32, 65, 1, 1, false);
    test_linear(70, 70, 32, 65, 1, 2, false);
    test_linear(9, 0, 32, 16, 0, 1);  // no live rows: nothing written
    for (int D = 8; D <= 300; D = D * 2 + 3) test_add_ln(20, 1 + irand(20), D);
    test_add_ln(17, 17, 256);
    test_add_ln(9, 0, 40);
    // linear + LayerNorm (M, M_max, K): one row, partial and whole 16-row blocks, K = d_model (out_proj) and
    // 2048 (linear2), scalar loads (K = 300, not a multiple of 8), rows past the count; then no live rows
    const int lnc[][3] = {{1, 1, 256}, {17, 20, 256}, {16, 16, 2048}, {5, 9, 300}, {3, 40, 64}};
    for (size_t i = 0; i < sizeof lnc / sizeof lnc[0]; i++)
        for (int split = 0; split < 2; split++) test_linear_ln(lnc[i][1], lnc[i][0], lnc[i][2], split);
    test_linear_ln(12, 0, 64, true);
    // split-K (M, M_max, K, N): linear2's 2048 in 4 chunks, a partial last chunk, scalar loads (K % 8 != 0), no rows
    const int skc[][4] = {{5, 9, 2048, 40}, {17, 20, 1000, 24}, {3, 4, 1100, 17}};
    for (size_t i = 0; i < sizeof skc / sizeof skc[0]; i++)
        for (int split = 0; split < 2; split++) test_splitk_ln(skc[i][1], skc[i][0], skc[i][2], skc[i][3], split);
    test_splitk_ln(6, 0, 1024, 16, true);
    test_embed(30, 17, 437, 64, 0, false);
    test_embed(12, 12, 101, 37, 19, true);
    test_embed(5, 3, 9, 300, 2, true);
    const char *names[] = {"linear fp32", "linear bf16", "linear split", "add+layernorm", "embedding",
                           "linear+layernorm", "split-K linear+layernorm"};
    printf("decoder_ops_emu: %d checks, %d failed; worst:", g_checks, g_fail);
    for (int i = 0; i <= W_SPLITK; i++) printf(" %s %.1f %%", names[i], 100 * g_worst[i]);
    printf(" of the budget\n");
    return g_fail ? 1 : 0;
}
