// CPU run of the mma.sync MLP kernels' own source under tests/emu/emu_rt.h: the FlashAttention-style fused
// kernel (kernels/convnext_mlp_mma_kernel.cuh) in the four configurations the launcher uses (C = 96: 4 warps x 2
// row tiles, C = 192: 8 warps x 1; with AC_MLP_MMA_ALT=1, 4 warps x 1 at both) and the split GEMM pair with its
// two epilogues (convnext_mlp_split_kernel.cuh), on row counts with partial last tiles. ldmatrix and mma.sync are
// emulated lane by lane from the PTX ISA's fragment layouts (kernels/mma_16816.cuh: every lane computes its own
// registers from the others' through shuffles), so a kernel that packs a fragment wrongly gets wrong numbers here
// as on the GPU. cp.async lands as late as the waits allow (NaN until then), dynamic shared memory is an
// exact-size, NaN-poisoned heap block (AddressSanitizer), warps run in a random order between barriers. Checked
// against a double-precision evaluation with the same fp16 rounding of the hidden activations, plus: rows past N
// untouched, every row written. What it cannot say: anything about nvcc's code or speed (tools/gpu-check runs the
// GPU test and the benchmark).
#include "emu_rt.h"
#include "emu_pipeline.h"

#include "mlp_case.h"

#include "../../kernels/mma_16816.cuh"
#include "../../kernels/convnext_mlp_mma_kernel.cuh"
#include "../../kernels/convnext_mlp_split_kernel.cuh"

static uint64_t g_rng = 77;

#define GUARD 2  // rows of x on each side of the N rows, NaN: the kernel must not touch them

// split = 0: the fused kernel convnext_mlp_mma_kernel<C, NW, MT>; 1: the two split GEMMs, as run_split
// launches them (NW, MT unused), with a NaN-filled hidden buffer
template <int C, int NW, int MT, int split = 0>
static int run(int64_t N) {
    typedef ac_mlp_mma::Cfg<C, NW, MT> K;
    const int H = 4 * C;
    const mlp_case p = mlp_make(C, N, &g_rng);
    // exact-size device stand-ins (ASan), x with NaN guard rows
    emu_buf<__half> dh(p.h.size()), dw1(p.w1.size()), dw2(p.w2.size());
    emu_buf<float> db1(H), db2(C), dg(C), dx((N + 2 * GUARD) * C);
    memcpy(dh.p(), p.h.data(), 2 * p.h.size());
    memcpy(dw1.p(), p.w1.data(), 2 * p.w1.size());
    memcpy(dw2.p(), p.w2.data(), 2 * p.w2.size());
    memcpy(db1.p(), p.b1.data(), 4 * H);
    memcpy(db2.p(), p.b2.data(), 4 * C);
    memcpy(dg.p(), p.gamma.data(), 4 * C);
    memcpy(dx.p() + GUARD * C, p.x0.data(), 4 * p.x0.size());
    float *x = dx.p() + GUARD * C;

    int pending = 0;
    if (!split) {
        const unsigned blocks = (unsigned)((N + K::BM - 1) / K::BM);
        emu_launch({blocks, 1, 1}, {(unsigned)K::NTHREADS, 1, 1}, K::SMEM, [&] {
            ac_mlp_mma::convnext_mlp_mma_kernel<C, NW, MT>(N, dh.p(), dw1.p(), db1.p(), dw2.p(), db2.p(), dg.p(), x);
            pending += !g_groups[emu_tid].empty() || !g_open[emu_tid].empty();
        });
    } else {
        typedef ac_mlp_split::Cfg S;
        emu_buf<__half> hid(N * H);
        const unsigned gy = (unsigned)((N + S::BM - 1) / S::BM);
        emu_launch({(unsigned)(H / S::BN), gy, 1}, {(unsigned)S::NTHREADS, 1, 1}, S::SMEM, [&] {
            ac_mlp_split::mlp_gemm_kernel<ac_mlp_split::EPI_BIAS_GELU>((int)N, H, C, dh.p(), dw1.p(), db1.p(), NULL,
                                                                       hid.p(), NULL);
            pending += !g_groups[emu_tid].empty() || !g_open[emu_tid].empty();
        });
        emu_launch({(unsigned)(C / S::BN), gy, 1}, {(unsigned)S::NTHREADS, 1, 1}, S::SMEM, [&] {
            ac_mlp_split::mlp_gemm_kernel<ac_mlp_split::EPI_SCALE_RESIDUAL>((int)N, C, H, hid.p(), dw2.p(), db2.p(),
                                                                            dg.p(), NULL, x);
            pending += !g_groups[emu_tid].empty() || !g_open[emu_tid].empty();
        });
    }

    int guard_bad = 0;
    for (int i = 0; i < GUARD * C; i++) guard_bad += !std::isnan(dx[i]) + !std::isnan(dx[(N + GUARD) * C + i]);
    const double worst = mlp_worst(p, x);
    const int ok = worst < 1.0 && guard_bad == 0 && pending == 0;
    if (split) printf("  split GEMMs:");
    printf("  C=%d NW=%d MT=%d N=%lld smem=%d: worst error %.3g of budget, %d guard elements written, %d threads "
           "left cp.async groups pending%s\n",
           C, NW, MT, (long long)N, split ? ac_mlp_split::Cfg::SMEM : K::SMEM, worst, guard_bad, pending, ok ? "" : "  <-- FAIL");
    return !ok;
}

int main() {
    int fails = 0;
    // the launcher's two configurations (kernels/convnext_mlp.cu with_config), full and partial row tiles
    fails += run<96, 4, 2>(129);
    fails += run<96, 4, 2>(7);
    fails += run<192, 8, 1>(130);
    // AC_MLP_MMA_ALT=1's tile shapes: 64-row CTAs of 4 warps, one row tile each
    fails += run<96, 4, 1>(65);
    fails += run<192, 4, 1>(20);
    // the split GEMMs at the narrowest width they take (C = 128: 4 and 1 column tiles, K = 128 and 512), a
    // partial second row tile and a lone partial one; C = 384 / 768 run in emu_test_cuda_convnext_mlp
    fails += run<128, 8, 1, 1>(130);
    fails += run<128, 8, 1, 1>(5);
    printf("convnext_mlp_mma_emu: %d configurations failed\n", fails);
    return fails ? 1 : 0;
}
