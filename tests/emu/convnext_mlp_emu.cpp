// CPU run of the fused ConvNeXt MLP kernel's own source (kernels/convnext_mlp_kernel.cuh) under the stand-ins
// of cuda_emu.h, for every tile configuration the launcher uses, on row counts with partial last tiles: checks
// the index arithmetic, the shared-memory layout (poisoned with NaN, with a canary past the configured size),
// the cp.async waits and the barriers (copies land as late as the waits allow, reading early gives NaN), against
// a double-precision evaluation with the same bf16 rounding of the hidden activations. Build with AddressSanitizer
// so that any global read past an array fails: tests/emu/run.sh. Not a GPU test: it says nothing about what
// nvcc makes of the code, only that the code is right if CUDA does what its documentation says.
#include "cuda_emu.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <thread>
#include <vector>

static inline float ac_mlp_gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)); }

thread_local emu_dim3 threadIdx, blockIdx;
static pthread_barrier_t g_barrier;
void __syncthreads() { pthread_barrier_wait(&g_barrier); }

struct emu_copy {
    void *dst;
    const void *src;
};
static thread_local std::deque<std::vector<emu_copy>> t_groups;
static thread_local std::vector<emu_copy> t_open;
void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes) {
    assert(bytes == 16 && (uintptr_t)dst % 16 == 0 && (uintptr_t)src % 16 == 0);
    unsigned char probe[16];
    memcpy(probe, src, 16);  // AddressSanitizer checks the source at issue
    for (int i = 0; i < 8; i++) ((uint16_t *)dst)[i] = 0x7fc0;  // NaN until the group lands
    t_open.push_back({dst, src});
}
void __pipeline_commit() {
    t_groups.push_back(t_open);
    t_open.clear();
}
void __pipeline_wait_prior(size_t prior) {
    while (t_groups.size() > prior) {
        for (const emu_copy &c : t_groups.front()) memcpy(c.dst, c.src, 16);
        t_groups.pop_front();
    }
}

#define EMU_SMEM (232 * 1024)
namespace ac_mlp_fused {
alignas(128) unsigned char smem[EMU_SMEM];  // the kernel's `extern __shared__` array; CTAs run one at a time
}

#include "../../kernels/convnext_mlp_kernel.cuh"

using namespace ac_mlp_fused;

static uint64_t g_rng = 99;
static float frand() {
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (float)((double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

template <int C, int BM, int BH>
static int run(int64_t N) {
    typedef Cfg<C, BM, BH> K;
    static_assert(K::SMEM + 1024 <= EMU_SMEM, "emulated shared memory too small");
    const int H = 4 * C;
    std::vector<__nv_bfloat16> h(N * C), w1((size_t)H * C), w2((size_t)H * C);
    std::vector<float> b1(H), b2(C), gamma(C), x(N * C);
    for (auto &v : h) v = __float2bfloat16_rn(1.7f * frand());
    for (auto &v : w1) v = __float2bfloat16_rn(1.7f / sqrtf((float)C) * frand());
    for (auto &v : w2) v = __float2bfloat16_rn(1.7f / sqrtf((float)H) * frand());
    for (auto &v : b1) v = 0.5f * frand();
    for (auto &v : b2) v = 0.2f * frand();
    for (auto &v : gamma) v = frand();
    for (auto &v : x) v = frand();
    const std::vector<float> x0 = x;
    int canary_bad = 0;
    pthread_barrier_init(&g_barrier, NULL, K::NTHREADS);
    for (int64_t b = 0; b < (N + BM - 1) / BM; b++) {
        for (size_t i = 0; i < EMU_SMEM / 2; i++) ((uint16_t *)smem)[i] = 0x7fc0;  // NaN as bf16 and as fp32
        std::vector<std::thread> threads;
        for (int t = 0; t < K::NTHREADS; t++)
            threads.emplace_back([&, t] {
                threadIdx = {(unsigned)t, 0, 0};
                blockIdx = {(unsigned)b, 0, 0};
                convnext_mlp_bf16_kernel<C, BM, BH>(N, h.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                                                    gamma.data(), x.data());
                assert(t_groups.empty() && t_open.empty() && "cp.async groups left pending at exit");
            });
        for (auto &t : threads) t.join();
        for (size_t i = K::SMEM / 2; i < EMU_SMEM / 2; i++) canary_bad += ((uint16_t *)smem)[i] != 0x7fc0;
    }
    pthread_barrier_destroy(&g_barrier);

    double worst = 0;
    std::vector<double> hid(H);
    for (int64_t r = 0; r < N; r++) {
        for (int j = 0; j < H; j++) {
            double s = 0;
            for (int k = 0; k < C; k++) s += (double)emu_bf2f(h[r * C + k]) * emu_bf2f(w1[(size_t)j * C + k]);
            hid[j] = emu_bf2f(__float2bfloat16_rn(ac_mlp_gelu_erf((float)s + b1[j])));
        }
        for (int c = 0; c < C; c++) {
            double y = b2[c], a = fabs(b2[c]);
            for (int j = 0; j < H; j++) {
                const double t = hid[j] * emu_bf2f(w2[(size_t)c * H + j]);
                y += t, a += fabs(t);
            }
            // fp32 accumulation differs from this double sum by ~1e-6 of sum|t|, and it can flip the bf16
            // rounding of a hidden value (one bf16 ulp of one term): 1e-3 of sum|t| covers both; an indexing
            // slip (a wrong, missing or doubled term) is of the order of sum|t| / sqrt(4C).
            const double e = fabs(x[r * C + c] - (x0[r * C + c] + gamma[c] * y)) / (fabs(gamma[c]) * a * 1e-3 + 1e-6);
            if (!(e <= worst)) worst = e;  // NaN sticks
        }
    }
    const int ok = worst < 1.0 && canary_bad == 0;
    printf("  C=%d BM=%d BH=%d N=%lld smem=%d: worst error %.3g of budget, %d shared bytes written past the "
           "configured size%s\n",
           C, BM, BH, (long long)N, K::SMEM, worst, 2 * canary_bad, ok ? "" : "  <-- FAIL");
    return !ok;
}

int main() {
    int fails = 0;
    // The launcher's four configurations (kernels/convnext_mlp.cu), each with full and partial row tiles.
    fails += run<96, 64, 32>(65);
    fails += run<96, 64, 32>(7);
    fails += run<192, 64, 32>(130);
    fails += run<384, 32, 32>(33);
    fails += run<768, 32, 16>(40);
    printf("convnext_mlp_emu: %d configurations failed\n", fails);
    return fails ? 1 : 0;
}
